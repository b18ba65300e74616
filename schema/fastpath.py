"""A compiled execution path for read-only queries.

graphql-core's executor spends several microseconds on every field it completes, which dominates
a dashboard query that returns hundreds of fields. For query documents whose every selection lands
on an object type (no unions or interfaces, no @skip/@include, no introspection), this module
compiles the validated operation once into a plan — per field: its response key, how to read it
and how to complete its type — and executes the plan breadth-first:

- fields strawberry resolves by attribute are read with ``getattr`` and serialised in place;
- fields with resolvers get a real ``Info`` and are called like graphql-core would call them;
  the awaitables of one level are awaited together, so DataLoaders batch exactly as before;
- errors and nulls follow the GraphQL specification: an error nulls its field, and a null in a
  non-null position propagates to the nearest nullable parent.

Anything the plan cannot express returns ``None`` from ``compile_operation`` and the request runs
through strawberry unchanged. ``tests/unit/api/test_fastpath.py`` checks both paths agree.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import _lru_cache_wrapper, lru_cache
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    located_error,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path
from graphql.type.definition import GraphQLResolveInfoHelpers, is_leaf_type
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo
from strawberry.schema.types.base_scalars import isoformat as _isoformat
from strawberry.types.info import Info
from strawberry.utils.str_converters import to_camel_case as _camel

_LEAF, _OBJECT, _LIST = 0, 1, 2
_DEFAULT, _RESOLVER, _TYPENAME = 0, 1, 2


class _NullViolationError(Exception):
    pass


def _no_resolver(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("field has no resolver")


@dataclass(slots=True)
class Completer:
    nullable: bool
    kind: int
    serialize: Callable[[Any], Any] | None = None
    item: Completer | None = None
    plan: ObjectPlan | None = None


_TYPENAME_COMPLETER = Completer(nullable=False, kind=_LEAF, serialize=str)


@dataclass(slots=True)
class FieldPlan:
    key: str
    kind: int
    parent_type: GraphQLObjectType
    nodes: list[FieldNode]
    definition: GraphQLField | None
    completer: Completer
    attr: str | None = None
    static_args: dict[str, Any] | None = None
    resolve: Callable[..., Any] = _no_resolver
    direct: DirectCall | None = None

    @property
    def label(self) -> str:
        return f"{self.parent_type.name}.{self.nodes[0].name.value}"


@dataclass(slots=True)
class DirectCall:
    """How to call a strawberry resolver the way strawberry's wrapper would, for fields whose
    arguments are all scalars and that have no field extensions: the GraphQL argument names are
    mapped to the resolver's parameters once, here, rather than converted on every call."""

    resolver: Callable[..., Any]
    field: Any
    arguments: tuple[tuple[str, str], ...]
    pass_self: bool
    info_name: str | None
    source_names: tuple[str, ...]

    @classmethod
    def of(cls, definition: GraphQLField) -> DirectCall | None:
        field = definition.extensions.get("strawberry-definition")
        resolver = getattr(field, "base_resolver", None)
        if field is None or resolver is None or field.extensions:
            return None
        arguments = []
        for argument in field.arguments:
            name = (
                _camel(argument.python_name)
                if argument.graphql_name is None
                else argument.graphql_name
            )
            if name not in definition.args:
                return None
            arg_type = definition.args[name].type
            if isinstance(arg_type, GraphQLNonNull):
                arg_type = arg_type.of_type
            if not isinstance(arg_type, GraphQLScalarType):
                return None
            arguments.append((name, argument.python_name))
        info = resolver.info_parameter
        return cls(
            resolver=resolver,
            field=field,
            arguments=tuple(arguments),
            pass_self=resolver.self_parameter is not None,
            info_name=info.name if info is not None else None,
            source_names=tuple(
                p.name
                for p in (resolver.root_parameter, resolver.parent_parameter)
                if p is not None
            ),
        )


@dataclass(slots=True)
class ObjectPlan:
    type: GraphQLObjectType
    fields: list[FieldPlan] = field(default_factory=list)
    keys: tuple[str, ...] = ()
    build: Callable[[Any], dict[str, Any]] | None = None

    def seal(self) -> ObjectPlan:
        """Fix the response key order and, for a static object, generate its builder.

        An object is static when every field is read from an attribute and is a leaf, a static
        object, or a list of leaves or static objects (a basket, its lines, a page of
        baskets): its builder makes the whole subtree in one call. Plans are sealed bottom-up,
        so the builders of nested objects exist when their parent's is generated."""
        self.keys = tuple(f.key for f in self.fields)
        if all(
            f.kind == _TYPENAME or (f.kind == _DEFAULT and _static(f.completer))
            for f in self.fields
        ):
            self.build = _generate_builder(self)
        return self


def _static(c: Completer) -> bool:
    if c.kind == _LEAF:
        return True
    if c.kind == _OBJECT:
        return c.plan is not None and c.plan.build is not None
    item = c.item
    assert item is not None
    return not item.nullable and item.kind != _LIST and _static(item)


class _SlowPathError(Exception):
    """A generated builder met something it does not handle (a null in a non-null field, a
    serialisation failure); the generic loop redoes that object and reports it precisely."""


def _slow() -> Any:
    raise _SlowPathError


class _Memo(dict[Any, Any]):
    """A bounded memo of a pure serialiser: one dict lookup instead of a call per value. It is
    emptied when full, so it holds at most ``size`` values."""

    __slots__ = ("_fn", "_size")

    def __init__(self, fn: Callable[[Any], Any], size: int = 16384) -> None:
        super().__init__()
        self._fn = fn
        self._size = size

    def __missing__(self, value: Any) -> Any:
        result = self._fn(value)
        if len(self) >= self._size:
            self.clear()
        self[value] = result
        return result


_MEMOS: dict[Callable[[Any], Any], _Memo] = {}


def _memo(serialize: Callable[[Any], Any]) -> _Memo:
    """One memo per serialiser, shared by every plan that uses it."""
    memo = _MEMOS.get(serialize)
    if memo is None:
        memo = _MEMOS[serialize] = _Memo(serialize)
    return memo


class _BuilderSource:
    """Python source for a static object: one function whose single expression reads every
    attribute and returns the finished dict, nested objects and lists included, keys in
    response order. Nested objects are inlined (a basket's lines are a comprehension inside the
    basket's dict, not a call per line); each value is bound once with ``:=``. Anything the
    builder does not expect raises, and the caller redoes the object on the generic path."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_slow": _slow, "_sequences": (list, tuple)}
        self._count = 0

    def name(self, prefix: str, value: Any = None) -> str:
        self._count += 1
        name = f"{prefix}{self._count}"
        if value is not None:
            self.namespace[name] = value
        return name

    def object(self, plan: ObjectPlan, source: str) -> str | None:
        items = []
        for f in plan.fields:
            if f.kind == _TYPENAME:
                items.append(f"{f.key!r}: {plan.type.name!r}")
                continue
            attr = f.attr
            if attr is None or not attr.isidentifier():
                return None
            value = self.name("v")
            read = f"({value} := {source}.{attr})"
            c = f.completer
            if c.kind == _LEAF and not c.nullable and _rejects_none(c.serialize):
                # The leaf's own type check sends None to a serialiser that raises on it.
                expression = self.leaf(c, value, read)
            else:
                completed = self.value(c, value, value)
                if completed is None:
                    return None
                if c.nullable:
                    expression = f"None if {read} is None else {completed}"
                else:
                    expression = f"{completed} if {read} is not None else _slow()"
            items.append(f"{f.key!r}: ({expression})")
        return "{" + ", ".join(items) + "}"

    def value(self, c: Completer, value: str, first: str) -> str | None:
        """The expression completing ``value`` (not None); ``first`` is where it is first read."""
        if c.kind == _LEAF:
            return self.leaf(c, value, first)
        if c.kind == _OBJECT:
            assert c.plan is not None
            return self.object(c.plan, value)
        item = c.item
        assert item is not None
        each = self.name("x")
        if item.kind == _LEAF:
            completed: str | None = self.leaf(item, each, each)
            checked = f"isinstance({value}, _sequences) and None not in {value}"
        else:
            completed = self.value(item, each, each)
            checked = f"isinstance({value}, _sequences)"
        if completed is None:
            return None
        return f"([{completed} for {each} in {value}] if {checked} else _slow())"

    def leaf(self, c: Completer, value: str, first: str) -> str:
        serialize = c.serialize
        assert serialize is not None
        template = _INLINE.get(serialize)
        if template is not None:
            s = self.name("s", serialize)
            return "(" + template.format(v=value, first=first, s=s) + ")"
        if serialize is _isoformat:
            self.namespace["_datetime"] = datetime
            s = self.name("s", serialize)
            return f"({value}.isoformat() if {first}.__class__ is _datetime else {s}({value}))"
        if isinstance(serialize, _lru_cache_wrapper):
            # The scalar declares its serialiser pure by caching it: ints (Money's cents) are
            # looked up in a dict; anything else takes the generic path, which calls it.
            memo = self.name("m", _memo(serialize))
            return f"({memo}[{value}] if {first}.__class__ is int else _slow())"
        s = self.name("s", serialize)
        if first != value:
            return f"{s}({first})"
        return f"{s}({value})"


def _generate_builder(plan: ObjectPlan) -> Callable[[Any], dict[str, Any]] | None:
    source = _BuilderSource()
    expression = source.object(plan, "source")
    if expression is None:
        return None
    code = f"def build(source):\n    return {expression}\n"
    exec(compile(code, f"<plan {plan.type.name}>", "exec"), source.namespace)
    builder: Callable[[Any], dict[str, Any]] = source.namespace["build"]
    return builder


@dataclass(slots=True)
class Prepared:
    """A parsed and validated request: request-level errors, or an operation ready to run."""

    errors: list[GraphQLError] | None = None
    operation: OperationDefinitionNode | None = None
    plan: ObjectPlan | None = None
    unknown_operation: bool = False


class _Unsupported(Exception):
    pass


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self._schema = schema
        self._fragments = fragments

    def object_plan(
        self, type_: GraphQLObjectType, selection_sets: list[SelectionSetNode]
    ) -> ObjectPlan:
        grouped: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(type_, selection_set, grouped)
        plan = ObjectPlan(type_)
        for key, nodes in grouped.items():
            plan.fields.append(self._field_plan(type_, key, nodes))
        return plan.seal()

    def _collect(
        self,
        type_: GraphQLObjectType,
        selection_set: SelectionSetNode,
        out: dict[str, list[FieldNode]],
    ) -> None:
        for selection in selection_set.selections:
            if selection.directives:
                raise _Unsupported("directives")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                out.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if condition is not None and condition.name.value != type_.name:
                    raise _Unsupported("type condition on another type")
                self._collect(type_, selection.selection_set, out)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments[selection.name.value]
                if fragment.type_condition.name.value != type_.name:
                    raise _Unsupported("fragment on another type")
                self._collect(type_, fragment.selection_set, out)
            else:  # pragma: no cover - the grammar has no other selections
                raise _Unsupported(type(selection).__name__)

    def _field_plan(self, type_: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, _TYPENAME, type_, nodes, None, _TYPENAME_COMPLETER)
        if name.startswith("__"):
            raise _Unsupported("introspection")
        definition = type_.fields[name]
        sub_selections = [n.selection_set for n in nodes if n.selection_set is not None]
        completer = self._completer(definition.type, sub_selections)
        resolve = definition.resolve
        static_args = None
        if not any(_has_variables(arg.value) for arg in nodes[0].arguments or ()):
            static_args = get_argument_values(definition, nodes[0], None)
        if (
            resolve is not None
            and getattr(resolve, "_is_default", False)
            and not inspect.iscoroutinefunction(resolve)
        ):
            strawberry_field = definition.extensions.get("strawberry-definition")
            if strawberry_field is not None and not strawberry_field.extensions:
                return FieldPlan(
                    key, _DEFAULT, type_, nodes, definition, completer,
                    attr=strawberry_field.python_name,
                )  # fmt: skip
        if resolve is None:
            return FieldPlan(key, _DEFAULT, type_, nodes, definition, completer, attr=name)
        return FieldPlan(
            key, _RESOLVER, type_, nodes, definition, completer,
            static_args=static_args, resolve=resolve, direct=DirectCall.of(definition),
        )  # fmt: skip

    def _completer(self, type_: GraphQLOutputType, selections: list[SelectionSetNode]) -> Completer:
        nullable = True
        if isinstance(type_, GraphQLNonNull):
            nullable = False
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            return Completer(nullable, _LIST, item=self._completer(type_.of_type, selections))
        if is_leaf_type(type_):
            return Completer(nullable, _LEAF, serialize=_serializer(type_))
        if isinstance(type_, GraphQLObjectType):
            return Completer(nullable, _OBJECT, plan=self.object_plan(type_, selections))
        raise _Unsupported(f"abstract type {type_}")


# Generated builders inline these checks instead of calling the serialisers; ``{first}`` is
# where the value is first read, ``{s}`` the serialiser for values of another type.
_INLINE: dict[Callable[[Any], Any], str] = {}
# Serialisers that raise on None, so a builder needs no separate check for a non-null leaf.
_NONE_RAISES: set[Callable[[Any], Any]] = {_isoformat}
_PASSTHROUGH: dict[tuple[type, Callable[[Any], Any]], Callable[[Any], Any]] = {}


def _raises_on_none(serialize: Callable[[Any], Any]) -> bool:
    try:
        serialize(None)
    except Exception:
        return True
    return False


def _passthrough(python_type: type, fallback: Callable[[Any], Any]) -> Callable[[Any], Any]:
    found = _PASSTHROUGH.get((python_type, fallback))
    if found is not None:
        return found

    def serialize(value: Any) -> Any:
        return value if type(value) is python_type else fallback(value)

    _INLINE[serialize] = "{v} if {first}.__class__ is " + python_type.__name__ + " else {s}({v})"
    if _raises_on_none(fallback):
        _NONE_RAISES.add(serialize)
    _PASSTHROUGH[python_type, fallback] = serialize
    return serialize


def _rejects_none(serialize: Callable[[Any], Any] | None) -> bool:
    """Whether a builder's leaf expression fails on None by itself: through a serialiser that
    raises on it, or (memoised serialisers) by leaving for the generic path."""
    return serialize in _NONE_RAISES or isinstance(serialize, _lru_cache_wrapper)


def _serialize_int(value: Any) -> Any:
    if type(value) is int and -2147483648 <= value <= 2147483647:
        return value
    return GraphQLInt.serialize(value)


_INLINE[_serialize_int] = (
    "{v} if {first}.__class__ is int and -2147483648 <= {v} <= 2147483647 else {s}({v})"
)
_NONE_RAISES.add(_serialize_int)


def _serializer(type_: Any) -> Callable[[Any], Any]:
    """Built-in scalars pass values of their own Python type through untouched (graphql-core's
    serialisers would check and coerce them first); everything else uses the type's own."""
    name = type_.name
    if name in ("String", "ID"):
        return _passthrough(str, type_.serialize)
    if name == "Boolean":
        return _passthrough(bool, type_.serialize)
    if name == "Float":
        return _passthrough(float, type_.serialize)
    if name == "Int":
        return _serialize_int
    serialize: Callable[[Any], Any] = type_.serialize
    return serialize


def _has_variables(value: Any) -> bool:
    kind = getattr(value, "kind", None)
    if kind == "variable":
        return True
    if kind == "list_value":
        return any(_has_variables(v) for v in value.values)
    if kind == "object_value":
        return any(_has_variables(f.value) for f in value.fields)
    return False


@dataclass(slots=True)
class _Slot:
    """Where a container sits in its parent, for null propagation."""

    container: Any
    key: Any
    nullable: bool
    parent: _Slot | None
    dead: bool = False


def _alive(slot: _Slot | None) -> bool:
    """False once a null propagated through this object or one of its ancestors: graphql-core
    stops completing an object at its first failing non-null field, and so does the plan."""
    while slot is not None:
        if slot.dead:
            return False
        slot = slot.parent
    return True


class FastPath:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        rules: list[Any],
        max_tokens: int,
        cache_size: int = 512,
    ) -> None:
        self._schema = schema
        self._rules = [*specified_rules, *rules]
        self._max_tokens = max_tokens
        self.prepare = lru_cache(maxsize=cache_size)(self._prepare)

    def _prepare(self, query: str, operation_name: str | None) -> Prepared:
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as e:
            return Prepared(errors=[e])
        errors = validate(self._schema, document, self._rules)
        if errors:
            return Prepared(errors=errors)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            operation = operations[0] if len(operations) == 1 else None
        else:
            operation = next(
                (o for o in operations if o.name and o.name.value == operation_name), None
            )
        if operation is None:
            return Prepared(unknown_operation=True)
        plan = None
        if operation.operation == OperationType.QUERY:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            try:
                assert self._schema.query_type is not None
                plan = _Compiler(self._schema, fragments).object_plan(
                    self._schema.query_type, [operation.selection_set]
                )
            except _Unsupported:
                plan = None
        return Prepared(operation=operation, plan=plan)

    async def execute(
        self, prepared: Prepared, variables: dict[str, Any] | None, context: Any
    ) -> tuple[dict[str, Any] | None, list[GraphQLError]]:
        """Run a compiled query. Returns (data, errors); data is None when the variables do not
        coerce (a request error) or a null reached the root."""
        assert prepared.plan is not None
        assert prepared.operation is not None
        coerced = get_variable_values(
            self._schema, prepared.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None, coerced
        run = _Run(self._schema, prepared, coerced, context)
        return await run.execute(), run.errors


class _Run:
    def __init__(self, schema: GraphQLSchema, prepared: Prepared, variables: Any, context: Any):
        self.schema = schema
        self.prepared = prepared
        assert prepared.operation is not None
        self.operation = prepared.operation
        self.variables = variables
        self.context = context
        self.errors: list[GraphQLError] = []
        self.root_null = False
        self._args: dict[int, dict[str, Any]] = {}
        self._helpers = GraphQLResolveInfoHelpers(asyncio.gather, lambda _values: None)  # type: ignore[arg-type]

    def arguments(self, plan: FieldPlan) -> dict[str, Any]:
        if plan.static_args is not None:
            return plan.static_args
        found = self._args.get(id(plan))
        if found is None:
            assert plan.definition is not None
            found = self._args[id(plan)] = get_argument_values(
                plan.definition, plan.nodes[0], self.variables
            )
        return found

    def call(self, direct: DirectCall, plan: FieldPlan, source: Any, path: Path) -> Any:
        given = self.arguments(plan)
        kwargs = {python: given[name] for name, python in direct.arguments if name in given}
        if direct.info_name is not None:
            kwargs[direct.info_name] = Info(_raw_info=self.info(plan, path), _field=direct.field)
        for name in direct.source_names:
            kwargs[name] = source
        if direct.pass_self:
            return direct.resolver(source, **kwargs)
        return direct.resolver(**kwargs)

    def info(self, plan: FieldPlan, path: Path) -> Any:
        assert plan.definition is not None
        return _OperationContextAwareGraphQLResolveInfo(
            plan.nodes[0].name.value,
            plan.nodes,
            plan.definition.type,
            plan.parent_type,
            path,
            self.schema,
            {},
            None,
            self.operation,
            self.variables.coerced,
            self.context,
            inspect.isawaitable,
            None,
            self._helpers,
            {},
        )

    async def execute(self) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        plan = self.prepared.plan
        assert plan is not None
        work: list[tuple[ObjectPlan, Any, dict[str, Any], Path | None, _Slot | None]] = [
            (plan, None, data, None, None)
        ]
        while work:
            pending: list[tuple[Any, FieldPlan, dict[str, Any], Path, _Slot | None]] = []
            next_work: list[Any] = []
            for object_plan, source, out, path, slot in work:
                if self.root_null or not _alive(slot):
                    continue
                self.fill(object_plan, source, out, path, slot, pending, next_work)
            if pending:
                if len(pending) == 1:
                    try:
                        results: list[Any] = [await pending[0][0]]
                    except Exception as e:
                        results = [e]
                else:
                    results = await asyncio.gather(*(p[0] for p in pending), return_exceptions=True)
                for (_, f, out, field_path, slot), value in zip(pending, results, strict=True):
                    if self.root_null or not _alive(slot):
                        continue
                    try:
                        if isinstance(value, BaseException):
                            raise value
                        self.complete(
                            f, f.completer, value, out, f.key, field_path, slot, next_work
                        )
                    except Exception as e:
                        self.field_error(e, f, out, field_path, slot)
            work = next_work
        return None if self.root_null else data

    def fill(
        self,
        object_plan: ObjectPlan,
        source: Any,
        out: dict[str, Any],
        path: Path | None,
        slot: _Slot | None,
        pending: list[Any],
        next_work: list[Any],
    ) -> None:
        """Complete one object's fields; stop at the first one whose null kills the object."""
        out.update(dict.fromkeys(object_plan.keys))
        typename = object_plan.type.name
        for f in object_plan.fields:
            kind = f.kind
            if kind == _TYPENAME:
                out[f.key] = typename
                continue
            field_path = None
            try:
                if kind == _DEFAULT:
                    value = getattr(source, f.attr or "")
                    completer = f.completer
                    if completer.kind == _LEAF and value is not None:
                        out[f.key] = completer.serialize(value)  # type: ignore[misc]
                        continue
                    field_path = Path(path, f.key, typename)
                else:
                    field_path = Path(path, f.key, typename)
                    if f.direct is not None:
                        value = self.call(f.direct, f, source, field_path)
                    else:
                        value = f.resolve(source, self.info(f, field_path), **self.arguments(f))
                    if inspect.isawaitable(value):
                        pending.append((value, f, out, field_path, slot))
                        continue
                self.complete(f, f.completer, value, out, f.key, field_path, slot, next_work)
            except Exception as e:
                self.field_error(e, f, out, field_path or Path(path, f.key, typename), slot)
            if self.root_null or (slot is not None and slot.dead):
                return

    def complete(
        self,
        f: FieldPlan,
        c: Completer,
        value: Any,
        container: Any,
        key: Any,
        path: Path,
        slot: _Slot | None,
        next_work: list[Any],
    ) -> None:
        if value is None:
            if c.nullable:
                container[key] = None
                return
            raise _NullViolationError()
        kind = c.kind
        if kind == _LEAF:
            container[key] = c.serialize(value)  # type: ignore[misc]
        elif kind == _OBJECT:
            plan = c.plan
            assert plan is not None
            if plan.build is not None:
                try:
                    container[key] = plan.build(value)
                    return
                except Exception:  # the generic path below reports it precisely
                    pass
            out: dict[str, Any] = {}
            container[key] = out
            next_work.append((plan, value, out, path, _Slot(container, key, c.nullable, slot)))
        else:
            values = value if isinstance(value, list | tuple) else list(value)
            item = c.item
            assert item is not None
            if not item.nullable:
                if item.kind == _OBJECT and item.plan is not None and item.plan.build is not None:
                    build = item.plan.build
                    try:
                        container[key] = [build(v) for v in values]
                        return
                    except Exception:  # the item loop below reports it precisely
                        pass
                elif item.kind == _LEAF:
                    serialize = item.serialize
                    assert serialize is not None
                    if None not in values:
                        container[key] = [serialize(v) for v in values]
                        return
            items: list[Any] = [None] * len(values)
            container[key] = items
            list_slot = _Slot(container, key, c.nullable, slot)
            for i, v in enumerate(values):
                item_path = Path(path, i, None)
                try:
                    self.complete(f, item, v, items, i, item_path, list_slot, next_work)
                except _NullViolationError:
                    self.null_error(f, item_path, list_slot)
                    return

    def field_error(
        self, e: Exception, f: FieldPlan, out: dict[str, Any], path: Path, slot: _Slot | None
    ) -> None:
        if isinstance(e, _NullViolationError):
            self.null_error(f, path, slot)
            return
        self.errors.append(located_error(e, f.nodes, path.as_list()))
        if f.completer.nullable:
            out[f.key] = None
        else:
            self.propagate(slot)

    def null_error(self, f: FieldPlan, path: Path, slot: _Slot | None) -> None:
        # As graphql-core does: a broken non-null promise is the server's fault (masked).
        violation = TypeError(f"Cannot return null for non-nullable field {f.label}.")
        self.errors.append(located_error(violation, f.nodes, path.as_list()))
        self.propagate(slot)

    def propagate(self, slot: _Slot | None) -> None:
        while slot is not None:
            slot.dead = True
            if slot.nullable:
                slot.container[slot.key] = None
                return
            slot = slot.parent
        self.root_null = True
