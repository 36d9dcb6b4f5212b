"""Components that remember how they were built, so a checkpoint can rebuild them.

A class deriving from :class:`RecordsInitArgs` (every ``Forecaster`` and every CW generator
network) records the arguments of its outermost constructor call, defaults included, as a spec

    {"class_path": "probforecast.models.GPVar", "init_args": {"target_dim": 8, ...}}

made of plain data only (``None``, ``bool``, ``int``, ``float``, ``str``, lists, string-keyed
dicts; an argument that is itself a recorded component becomes ``{"component": its spec}``, so
a dict argument that merely looks like a spec, e.g. CW-Gen's ``network``, stays a dict; a
dataclass instance, e.g. CW-Gen's ``jmce: JMCESpec``, becomes ``{"dataclass": {"class_path",
"fields"}}``), so it is stored in a checkpoint that loads with
``torch.load(weights_only=True)``. ``class_path`` is the class's *stable* name: the shortest
package that exports it under its own name (``probforecast.models.GPVar``, not
``probforecast.models.gls.gpvar.GPVar``), so moving a file inside the package keeps old
checkpoints loadable as long as the public name stays.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from typing import Any

_SPEC_ATTR = "_probforecast_init_spec"
_PLAIN = (type(None), bool, int, float, str)
_COMPONENT = "component"
_DATACLASS = "dataclass"


class UnencodableArgument(TypeError):
    """A constructor argument that is not plain data (so the spec cannot be stored)."""


class RecordsInitArgs:
    """Mixin: ``init_spec()`` gives the class path and the arguments the instance was built with."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording(cls.__dict__["__init__"], cls)  # type: ignore[method-assign]

    def init_spec(self) -> dict[str, Any]:
        """``{"class_path", "init_args"}`` of this instance; raises ``UnencodableArgument`` when
        an argument is not plain data or a ``RecordsInitArgs`` component."""
        recorded = self.__dict__.get(_SPEC_ATTR)
        if recorded is None:
            raise UnencodableArgument(
                f"{type(self).__name__} was not built through its constructor; no spec recorded"
            )
        cls, arguments = recorded
        return {
            "class_path": stable_class_path(cls),
            "init_args": {name: _encode(value, name) for name, value in arguments.items()},
        }

    @classmethod
    def upgrade_init_args(cls, init_args: dict[str, Any]) -> dict[str, Any]:
        """``init_args`` of a spec written by an older release, in today's form (decoded
        values; :func:`build_from_spec` calls it before the constructor). Default: unchanged;
        a class whose constructor changed overrides it."""
        return init_args


def _recording(init, owner: type):
    signature = inspect.signature(init)

    @functools.wraps(init)
    def recording_init(self, *args: Any, **kwargs: Any) -> None:
        if _SPEC_ATTR not in self.__dict__:  # the outermost (most derived) constructor call
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments: dict[str, Any] = {}
            for name, param in list(signature.parameters.items())[1:]:
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(bound.arguments.get(name, {}))
                elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                    forwarded = bound.arguments.get(name, ())
                    arguments.update(_name_forwarded(type(self), owner, forwarded))
                else:
                    arguments[name] = bound.arguments[name]
            self.__dict__[_SPEC_ATTR] = (type(self), arguments)
        init(self, *args, **kwargs)

    return recording_init


def _name_forwarded(cls: type, owner: type, values: tuple) -> dict[str, Any]:
    """Names of the positional arguments that ``owner.__init__`` takes as ``*args`` and forwards
    to a base class: the positional parameters of the next ``__init__`` up ``cls``'s MRO."""
    if not values:
        return {}
    mro = cls.__mro__
    for base in mro[mro.index(owner) + 1 :]:
        base_init = base.__dict__.get("__init__")
        if base_init is None:
            continue
        params = list(inspect.signature(base_init).parameters.values())[1:]
        positional = [
            p.name
            for p in params
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) >= len(values):
            return dict(zip(positional, values, strict=False))
        if not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
            break
    raise TypeError(f"{cls.__name__}: cannot name the positional arguments {values!r}")


def _encode(value: Any, where: str) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, RecordsInitArgs):
        return {_COMPONENT: value.init_spec()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: _encode(getattr(value, f.name), f"{where}.{f.name}")
            for f in dataclasses.fields(value)
        }
        return {_DATACLASS: {"class_path": stable_class_path(type(value)), "fields": fields}}
    raise UnencodableArgument(
        f"argument {where} = {type(value).__name__} is not plain data (None, bool, int, float, "
        "str, list, dict), a dataclass or a component with a recorded spec"
    )


def stable_class_path(cls: type) -> str:
    """``package.Name`` for the shortest parent package of ``cls`` that exports it under its own
    name, else ``module.QualName``."""
    parts = cls.__module__.split(".")
    for depth in range(1, len(parts)):
        package = ".".join(parts[:depth])
        try:
            exported = getattr(importlib.import_module(package), cls.__name__, None)
        except ImportError:
            continue
        if exported is cls:
            return f"{package}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


#: Modules that moved inside the package: old checkpoints and specs that name a class by its
#: old module path still resolve (``resolve_class_path``).
MOVED_MODULES = {
    "probforecast.models.lowrank_ar": "probforecast.models.gls.lowrank_ar",
    "probforecast.models.temporal_correlation": "probforecast.models.gls.temporal_correlation",
    "probforecast.models.gpvar": "probforecast.models.gls.gpvar",
    "probforecast.models.transformer": "probforecast.models.gls.transformer",
    "probforecast.models.voldy_vae": "probforecast.models.voldy.model",
}


def import_path(path: str) -> Any:
    """The object a ``package.module.name`` path names (a module in ``MOVED_MODULES`` read at
    its new place); ``ValueError`` naming the path and the import error if there is none."""
    module, _, name = path.rpartition(".")
    module = MOVED_MODULES.get(module, module)
    try:
        return getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError) as err:
        raise ValueError(f"class_path {path!r} names no importable class ({err})") from None


def resolve_class_path(class_path: str) -> type:
    """The class ``import_path(class_path)`` names; ``ValueError`` naming the path if none."""
    cls = import_path(class_path)
    if not isinstance(cls, type):
        raise ValueError(f"class_path {class_path!r} names no importable class")
    return cls


def build_from_spec(spec: dict[str, Any]) -> Any:
    """Rebuild a component from ``init_spec()``'s output (nested specs rebuilt first)."""
    cls = resolve_class_path(spec["class_path"])
    init_args = {name: _decode(value) for name, value in spec["init_args"].items()}
    upgrade = getattr(cls, "upgrade_init_args", None)
    return cls(**(upgrade(init_args) if upgrade is not None else init_args))


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_COMPONENT}:
            return build_from_spec(value[_COMPONENT])
        if set(value) == {_DATACLASS}:
            inner = value[_DATACLASS]
            cls = resolve_class_path(inner["class_path"])
            return cls(**{k: _decode(v) for k, v in inner["fields"].items()})
        return {k: _decode(v) for k, v in value.items()}
    return value
