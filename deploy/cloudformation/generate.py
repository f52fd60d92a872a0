"""Writes ``co.yaml`` (run: ``python deploy/cloudformation/generate.py``). The template is
generated so that the container settings come from the same ECS task definitions the
pipeline registers (``docker/ecs/*.json``): one list of variables and secrets, not two.
A test checks that ``co.yaml`` is what this script writes, and lints it with cfn-lint."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENV = "${Environment}"

# Placeholders of docker/ecs/*.json -> the template's own parameters and resources.
PLACEHOLDERS = {
    "ENVIRONMENT": "${Environment}",
    "AWS_REGION": "${AWS::Region}",
    "AWS_ACCOUNT_ID": "${AWS::AccountId}",
    "IMAGE": "${Repository.RepositoryUri}:${ImageTag}",
    "TEMPORAL_ADDRESS": "${TemporalAddress}",
    "TEMPORAL_NAMESPACE": "${TemporalNamespace}",
    "TEMPORAL_TLS_SERVER_NAME": "${TemporalTlsServerName}",
    "EVAL_BASE": "${EvalBase}",
    "PROBLEM_BANK_BASE": "${ProblemBankBase}",
    "TUTOR_BASE": "${TutorBase}",
    "CORS_ORIGINS": "${CorsOrigins}",
    "OTLP_ENDPOINT": "${OtlpEndpoint}",
}
SECRETS = {
    "db-url": "postgresql+asyncpg DSN of the RDS database (written by this stack)",
    "redis-url": "rediss:// URL of the ElastiCache replication group (written by this stack)",
    "problem-bank-token": "X-Internal-Token sent to Problem Bank (its own credential)",
    "eval-token": "X-Internal-Token sent to Eval (its own credential)",
    "tutor-token": "X-Internal-Token sent to the Tutor (its own credential)",
    "main-api-token": "X-Internal-Token sent to the main API with review notifications",
    "jwt-public-key": "PEM of the RSA key that verifies user JWTs",
    "temporal-tls-client-cert": "PEM client certificate for Temporal mTLS (empty: none)",
    "temporal-tls-client-key": "PEM key of that certificate (empty: none)",
    "temporal-tls-ca": "PEM CA of the Temporal frontend (empty: system roots)",
    "temporal-api-key": "Temporal Cloud API key (empty: none)",
}


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def getatt(name: str, attr: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [name, attr]}


def secret_logical_id(name: str) -> str:
    return "Secret" + "".join(part.title() for part in name.split("-"))


def ecs_container(name: str) -> dict[str, Any]:
    """A container of docker/ecs/<name>.json in CloudFormation's spelling."""
    task = json.loads((ROOT / "docker" / "ecs" / f"{name}.json").read_text())
    c = task["containerDefinitions"][0]

    def fill(value: str) -> Any:
        if "${" not in value:
            return value
        return sub(re.sub(r"\$\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], value))

    out: dict[str, Any] = {
        "Name": c["name"],
        "Image": fill(c["image"]),
        "Command": c["command"],
        "Essential": True,
        "Environment": [{"Name": e["name"], "Value": fill(e["value"])} for e in c["environment"]],
        "Secrets": [
            {
                "Name": s["name"],
                "ValueFrom": ref(secret_logical_id(s["valueFrom"].rsplit("/", 1)[1])),
            }
            for s in c["secrets"]
        ],
        "LogConfiguration": {
            "LogDriver": "awslogs",
            "Options": {
                "awslogs-group": ref(f"Logs{name.title().replace('-', '')}"),
                "awslogs-region": ref("AWS::Region"),
                "awslogs-stream-prefix": name,
            },
        },
    }
    if "stopTimeout" in c:
        out["StopTimeout"] = c["stopTimeout"]
    if "portMappings" in c:
        out["PortMappings"] = [
            {"ContainerPort": p["containerPort"], "Protocol": p["protocol"]}
            for p in c["portMappings"]
        ]
    if "healthCheck" in c:
        h = c["healthCheck"]
        out["HealthCheck"] = {
            "Command": h["command"],
            "Interval": h["interval"],
            "Timeout": h["timeout"],
            "Retries": h["retries"],
            "StartPeriod": h["startPeriod"],
        }
    return out


def task_definition(name: str, role: str, cpu: str, memory: str) -> dict[str, Any]:
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": sub(f"co-{name}-{ENV}"),
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "Cpu": cpu,
            "Memory": memory,
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
            "ExecutionRoleArn": getatt("TaskExecutionRole", "Arn"),
            "TaskRoleArn": getatt(role, "Arn"),
            "ContainerDefinitions": [ecs_container(name)],
        },
    }


def security_group(description: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": description,
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": ingress,
        },
    }


def from_group(group: str, port: int, description: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "SourceSecurityGroupId": ref(group),
        "Description": description,
    }


def from_cidr(cidr: str | dict[str, str], port: int, description: str) -> dict[str, Any]:
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "CidrIp": cidr,
        "Description": description,
    }


def role(
    service_principal: str, policies: list[dict[str, Any]], managed: list[Any]
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service_principal},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
    }
    if policies:
        props["Policies"] = policies
    if managed:
        props["ManagedPolicyArns"] = managed
    return {"Type": "AWS::IAM::Role", "Properties": props}


def service(name: str, task: str, group: str, desired: int, lb: bool) -> dict[str, Any]:
    props: dict[str, Any] = {
        "ServiceName": sub(f"co-{name}-{ENV}"),
        "Cluster": ref("Cluster"),
        "TaskDefinition": ref(task),
        "LaunchType": "FARGATE",
        "DesiredCount": desired,
        "EnableExecuteCommand": False,
        "PropagateTags": "SERVICE",
        "DeploymentConfiguration": {
            "MinimumHealthyPercent": 100,
            "MaximumPercent": 200,
            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        },
        "NetworkConfiguration": {
            "AwsvpcConfiguration": {
                "AssignPublicIp": "DISABLED",
                "Subnets": ref("PrivateSubnetIds"),
                "SecurityGroups": [ref(group)],
            }
        },
    }
    out: dict[str, Any] = {"Type": "AWS::ECS::Service", "Properties": props}
    if lb:
        props["HealthCheckGracePeriodSeconds"] = 30
        props["LoadBalancers"] = [
            {"ContainerName": name, "ContainerPort": 8000, "TargetGroupArn": ref("ApiTargetGroup")}
        ]
        out["DependsOn"] = ["HttpsListener"]
    return out


def template() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    params: dict[str, Any] = {
        "Environment": {"Type": "String", "AllowedValues": ["staging", "production"]},
        "VpcId": {"Type": "AWS::EC2::VPC::Id"},
        "VpcCidr": {"Type": "String", "Description": "who may scrape the metrics ports"},
        "PublicSubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
        "PrivateSubnetIds": {"Type": "List<AWS::EC2::Subnet::Id>"},
        "CertificateArn": {"Type": "String", "Description": "ACM certificate of the API"},
        "ImageTag": {"Type": "String", "Default": "bootstrap"},
        "TemporalAddress": {"Type": "String"},
        "TemporalNamespace": {"Type": "String"},
        "TemporalTlsServerName": {"Type": "String", "Default": ""},
        "EvalBase": {"Type": "String"},
        "ProblemBankBase": {"Type": "String"},
        "TutorBase": {"Type": "String"},
        "CorsOrigins": {"Type": "String", "Default": "https://app.scimigo.com"},
        "OtlpEndpoint": {"Type": "String", "Default": ""},
        "DbInstanceClass": {"Type": "String", "Default": "db.t4g.medium"},
        "CacheNodeType": {"Type": "String", "Default": "cache.t4g.small"},
    }
    conditions = {"IsProduction": {"Fn::Equals": [ref("Environment"), "production"]}}

    resources["Repository"] = {
        "Type": "AWS::ECR::Repository",
        "Properties": {
            "RepositoryName": sub(f"co-{ENV}"),
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "ImageTagMutability": "IMMUTABLE",
            "LifecyclePolicy": {
                "LifecyclePolicyText": json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": "keep the newest 50 images",
                                "selection": {
                                    "tagStatus": "any",
                                    "countType": "imageCountMoreThan",
                                    "countNumber": 50,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                )
            },
        },
    }
    resources["Cluster"] = {
        "Type": "AWS::ECS::Cluster",
        "Properties": {
            "ClusterName": sub(f"co-{ENV}"),
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    }
    for name in ("api", "worker", "temporal-setup", "migrate"):
        resources[f"Logs{name.title().replace('-', '')}"] = {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "LogGroupName": sub(f"/ecs/co-{ENV}/{name}"),
                "RetentionInDays": 30,
            },
        }

    # ---- secrets: the stack writes the two it knows, operators fill the others.
    resources["DbPassword"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "Name": sub(f"co/{ENV}/db-password"),
            "GenerateSecretString": {
                "SecretStringTemplate": '{"username": "co"}',
                "GenerateStringKey": "password",
                "PasswordLength": 32,
                "ExcludePunctuation": True,
            },
        },
    }
    resolve_pw = "{{resolve:secretsmanager:${DbPassword}:SecretString:password}}"
    for name, description in SECRETS.items():
        props: dict[str, Any] = {"Name": sub(f"co/{ENV}/{name}"), "Description": description}
        if name == "db-url":
            props["SecretString"] = sub(
                f"postgresql+asyncpg://co:{resolve_pw}@${{Database.Endpoint.Address}}:"
                "${Database.Endpoint.Port}/scimigo_co"
            )
        elif name == "redis-url":
            props["SecretString"] = sub(
                "rediss://${Redis.PrimaryEndPoint.Address}:${Redis.PrimaryEndPoint.Port}/0"
            )
        else:
            props["SecretString"] = " "  # filled by operators; blank means "not used"
        resources[secret_logical_id(name)] = {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": props,
        }

    # ---- network access.
    resources["AlbSecurityGroup"] = security_group(
        "CO ALB: HTTPS from anywhere",
        [
            from_cidr("0.0.0.0/0", 443, "HTTPS"),
            from_cidr("0.0.0.0/0", 80, "redirect to HTTPS"),
        ],
    )
    resources["ApiSecurityGroup"] = security_group(
        "CO API tasks",
        [
            from_group("AlbSecurityGroup", 8000, "the ALB"),
            from_cidr(ref("VpcCidr"), 9100, "Prometheus scrapes inside the VPC"),
        ],
    )
    resources["WorkerSecurityGroup"] = security_group(
        "CO worker tasks",
        [from_cidr(ref("VpcCidr"), 9101, "Prometheus scrapes inside the VPC")],
    )
    resources["DatabaseSecurityGroup"] = security_group(
        "CO PostgreSQL",
        [
            from_group("ApiSecurityGroup", 5432, "API"),
            from_group("WorkerSecurityGroup", 5432, "worker and one-off tasks"),
        ],
    )
    resources["RedisSecurityGroup"] = security_group(
        "CO Redis",
        [
            from_group("ApiSecurityGroup", 6379, "API"),
            from_group("WorkerSecurityGroup", 6379, "worker"),
        ],
    )

    # ---- PostgreSQL and Redis.
    resources["DatabaseSubnets"] = {
        "Type": "AWS::RDS::DBSubnetGroup",
        "Properties": {
            "DBSubnetGroupDescription": "CO PostgreSQL",
            "SubnetIds": ref("PrivateSubnetIds"),
        },
    }
    resources["Database"] = {
        "Type": "AWS::RDS::DBInstance",
        "DeletionPolicy": "Snapshot",
        "UpdateReplacePolicy": "Snapshot",
        "Properties": {
            "Engine": "postgres",
            "EngineVersion": "17.9",
            "DBInstanceClass": ref("DbInstanceClass"),
            "AllocatedStorage": "50",
            "StorageType": "gp3",
            "StorageEncrypted": True,
            "DBName": "scimigo_co",
            "MasterUsername": "co",
            "MasterUserPassword": sub(resolve_pw),
            "MultiAZ": {"Fn::If": ["IsProduction", True, False]},
            "DeletionProtection": {"Fn::If": ["IsProduction", True, False]},
            "BackupRetentionPeriod": {"Fn::If": ["IsProduction", 14, 3]},
            "PubliclyAccessible": False,
            "DBSubnetGroupName": ref("DatabaseSubnets"),
            "VPCSecurityGroups": [getatt("DatabaseSecurityGroup", "GroupId")],
            "EnablePerformanceInsights": True,
            "AutoMinorVersionUpgrade": True,
        },
    }
    resources["RedisSubnets"] = {
        "Type": "AWS::ElastiCache::SubnetGroup",
        "Properties": {"Description": "CO Redis", "SubnetIds": ref("PrivateSubnetIds")},
    }
    resources["Redis"] = {
        "Type": "AWS::ElastiCache::ReplicationGroup",
        "Properties": {
            "ReplicationGroupDescription": "CO rate limits, SSE slots, tutor streams",
            "Engine": "redis",
            "EngineVersion": "7.1",
            "CacheNodeType": ref("CacheNodeType"),
            "NumCacheClusters": {"Fn::If": ["IsProduction", 2, 1]},
            "AutomaticFailoverEnabled": {"Fn::If": ["IsProduction", True, False]},
            "TransitEncryptionEnabled": True,
            "AtRestEncryptionEnabled": True,
            "CacheSubnetGroupName": ref("RedisSubnets"),
            "SecurityGroupIds": [getatt("RedisSecurityGroup", "GroupId")],
        },
    }

    # ---- load balancer: /readyz decides whether a task gets traffic.
    resources["LoadBalancer"] = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": ref("PublicSubnetIds"),
            "SecurityGroups": [ref("AlbSecurityGroup")],
            # SSE streams stay open between keep-alive comments (CO_SSE_PING_SECONDS).
            "LoadBalancerAttributes": [
                {"Key": "idle_timeout.timeout_seconds", "Value": "120"},
                {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
            ],
        },
    }
    resources["ApiTargetGroup"] = {
        "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
        "Properties": {
            "TargetType": "ip",
            "Protocol": "HTTP",
            "Port": 8000,
            "VpcId": ref("VpcId"),
            "HealthCheckPath": "/readyz",
            "HealthCheckIntervalSeconds": 10,
            "HealthyThresholdCount": 2,
            "UnhealthyThresholdCount": 3,
            "Matcher": {"HttpCode": "200"},
            "TargetGroupAttributes": [
                {"Key": "deregistration_delay.timeout_seconds", "Value": "30"}
            ],
        },
    }
    resources["HttpsListener"] = {
        "Type": "AWS::ElasticLoadBalancingV2::Listener",
        "Properties": {
            "LoadBalancerArn": ref("LoadBalancer"),
            "Port": 443,
            "Protocol": "HTTPS",
            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "Certificates": [{"CertificateArn": ref("CertificateArn")}],
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref("ApiTargetGroup")}],
        },
    }
    resources["HttpListener"] = {
        "Type": "AWS::ElasticLoadBalancingV2::Listener",
        "Properties": {
            "LoadBalancerArn": ref("LoadBalancer"),
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Protocol": "HTTPS",
                        "Port": "443",
                        "StatusCode": "HTTP_301",
                    },
                }
            ],
        },
    }

    # ---- IAM: the execution role reads this environment's secrets; the tasks need nothing.
    resources["TaskExecutionRole"] = role(
        "ecs-tasks.amazonaws.com",
        [
            {
                "PolicyName": "read-co-secrets",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": sub(
                                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                                f"${{AWS::AccountId}}:secret:co/{ENV}/*"
                            ),
                        }
                    ],
                },
            }
        ],
        [
            sub(
                "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                "AmazonECSTaskExecutionRolePolicy"
            )
        ],
    )
    resources["TaskExecutionRole"]["Properties"]["RoleName"] = sub(f"co-{ENV}-task-execution")
    for logical, name in (("ApiTaskRole", "api"), ("WorkerTaskRole", "worker")):
        resources[logical] = role("ecs-tasks.amazonaws.com", [], [])
        resources[logical]["Properties"]["RoleName"] = sub(f"co-{ENV}-{name}")

    # ---- ECS: the first revisions; the pipeline registers the next ones from docker/ecs.
    resources["ApiTask"] = task_definition("api", "ApiTaskRole", "1024", "2048")
    resources["WorkerTask"] = task_definition("worker", "WorkerTaskRole", "1024", "2048")
    resources["TemporalSetupTask"] = task_definition(
        "temporal-setup", "WorkerTaskRole", "256", "512"
    )
    resources["MigrateTask"] = task_definition("migrate", "WorkerTaskRole", "256", "512")
    resources["ApiService"] = service("api", "ApiTask", "ApiSecurityGroup", 2, lb=True)
    resources["WorkerService"] = service("worker", "WorkerTask", "WorkerSecurityGroup", 2, lb=False)

    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "SciMigo Curriculum Orchestrator: ECS (API, worker), ECR, RDS "
        "PostgreSQL, ElastiCache Redis, ALB, Secrets Manager, log groups.",
        "Parameters": params,
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": {
            "ApiUrl": {"Value": sub("https://${LoadBalancer.DNSName}")},
            "RepositoryUri": {"Value": getatt("Repository", "RepositoryUri")},
            "ClusterName": {"Value": ref("Cluster")},
            "NetworkConfiguration": {
                "Description": "for `aws ecs run-task` of the one-off tasks (pipeline variable)",
                "Value": {
                    "Fn::Sub": [
                        "awsvpcConfiguration={subnets=[${Subnets}],securityGroups=[${Group}],"
                        "assignPublicIp=DISABLED}",
                        {
                            "Subnets": {"Fn::Join": [",", ref("PrivateSubnetIds")]},
                            "Group": ref("WorkerSecurityGroup"),
                        },
                    ]
                },
            },
        },
    }


def render() -> str:
    header = (
        "# Generated by deploy/cloudformation/generate.py from docker/ecs/*.json; "
        "edit that script, not this file.\n"
    )
    return header + yaml.safe_dump(template(), sort_keys=False, width=100)


if __name__ == "__main__":
    (HERE / "co.yaml").write_text(render())
