"""The one error every app's services raise: a request that breaks a rule."""


class ServiceError(Exception):
    """A request that breaks a rule; `field` names the input at fault when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
