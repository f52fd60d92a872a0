"""Activities: everything that touches the network or the database on a workflow's behalf."""
