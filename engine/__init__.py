"""Signoff's workflow engine. Web views, API handlers, timers and CLI commands call these; nothing else
changes a workflow instance."""
from engine.errors import (
                           EngineError,
                           InvalidInput,
                           InvalidPayload,
                           NotAvailable,
                           NotPermitted,
                           UnknownInstance,
                           UnknownWorkflow,
                           VersionConflict,
)
from engine.history import history
from engine.inbox import inbox
from engine.runtime import assignees, available_actions, fire, may_fire, opening_later, start, state_facts

__all__ = ["start", "fire", "may_fire", "available_actions", "opening_later", "state_facts", "assignees", "inbox",
           "history", "EngineError",
           "InvalidInput", "InvalidPayload", "NotAvailable", "NotPermitted", "UnknownInstance", "UnknownWorkflow",
           "VersionConflict"]
