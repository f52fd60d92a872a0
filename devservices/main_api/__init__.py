"""A stand-in of the main API's notification endpoint (see ``devservices.main_api.app``)."""

from devservices.main_api.app import NotificationLog, create_app

__all__ = ["NotificationLog", "create_app"]
