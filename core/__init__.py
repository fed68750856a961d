"""What every app shares and that depends on no app: the service error, server paths, the JSON parser, leased jobs."""
