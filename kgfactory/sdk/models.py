"""Typed results of the SDK: the application layer's one set (kgfactory/service/results.py), needing only pydantic."""
from ..service.results import *  # noqa: F401,F403
from ..service.results import __all__  # noqa: F401
