"""The seed's backend classes: thin front doors onto :mod:`huey.storage`.

Each is built as ``Cls(name, **connection)`` and carries a ``.storage``;
``Huey(queue, result_store=..., schedule=...)`` takes what it needs from them.
"""
