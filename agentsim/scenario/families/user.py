"""Third-party families: modules named by $AGENTSIM_GENERATORS and by entry points."""

from __future__ import annotations

# The family registry calls load_user_generators() on first use: this is where generators that live
# outside agentsim are found: modules named in $AGENTSIM_GENERATORS (comma-separated, e.g.
# "myteam.families") and entry points of the group "agentsim.generators" (each naming a module
# to import). Importing such a module runs its @generator decorators; nothing else is needed.

ENV_VAR = "AGENTSIM_GENERATORS"
ENTRY_POINT_GROUP = "agentsim.generators"


def load_user_generators() -> list[str]:
    """Import the generator modules named by $AGENTSIM_GENERATORS and by entry points.

    Returns the module names imported. A module that fails to import is a
    :class:`~agentsim.errors.ScenarioError` naming it (not a traceback).
    """
    import importlib
    import os
    from importlib.metadata import entry_points

    from agentsim.errors import ScenarioError

    names = [m.strip() for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    origins = {m: f"${ENV_VAR}" for m in names}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.partition(":")[0]
        names.append(module)
        origins[module] = f"entry point {ep.name!r} ({ENTRY_POINT_GROUP})"
    done: list[str] = []
    for module in dict.fromkeys(names):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure in user code is reported, not raised raw
            raise ScenarioError(
                f"cannot import generator module {module!r} named by {origins[module]}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"check the module is importable (python -c 'import {module}') or unset {ENV_VAR}",
            ) from None
        done.append(module)
    return done


