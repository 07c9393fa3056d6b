"""Synapse module that asks roomguard, a policy decision point, before local users send events that carry text, join
rooms, change who may enter or read a room, create rooms, or publish rooms to the public directory.

Configure it in `homeserver.yaml`:

    modules:
      - module: synapse_roomguard.RoomguardModule
        config:
          endpoint: "127.0.0.1:50051"

See the package README for every key and the failure modes.
"""

from .module import RoomguardModule

__all__ = ["RoomguardModule"]
__version__ = "0.1.0"
