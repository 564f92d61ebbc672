"""`get` and `describe`: fetch from the API, print with kubectl's printers."""

from __future__ import annotations

import copy
import json
import sys

import yaml

from netsim.api import errors
from netsim.api import events as ev
from netsim.api.printing import printers
from netsim.api.resources import UnknownResource, lookup
from netsim.cli import describe as describer
from netsim.cli import goyaml, jsonpath
from netsim.cli.context import CliError, Ctx, err, out, server_error


def _split_targets(args: list[str]) -> list[tuple[str, list[str]]]:
    """`po`, `po a b`, `po/a`, `deploy,svc`, `po/a svc/b` -> [(kind, names)]."""
    if not args:
        raise CliError("You must specify the type of resource to get. Use \"netsim api-resources\" "
                       "for a complete list of supported resources.")
    if all("/" in a for a in args):
        out_: list[tuple[str, list[str]]] = []
        for a in args:
            k, n = a.split("/", 1)
            out_.append((k, [n]))
        return out_
    kinds = args[0].split(",")
    return [(k, args[1:]) for k in kinds]


def to_yaml(obj: dict) -> str:
    """`-o yaml` as kubectl writes it (go-yaml: sorted keys, block strings, quoted look-alikes)."""
    class Dumper(yaml.SafeDumper):
        def resolve(self, kind, value, implicit):
            # plain scalars read as go-yaml reads them (netsim.cli.goyaml), not as PyYAML:
            # `=` and `<<` may stay plain, `y` may not
            if kind is yaml.ScalarNode and implicit[0]:
                return "tag:yaml.org,2002:" + goyaml.resolve(value)
            return super().resolve(kind, value, implicit)

    def str_presenter(dumper, data):
        if "\n" in data:
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        # kubectl (go-yaml) double-quotes strings that would read as another type: "3", "true"
        if goyaml.needs_quotes(data):
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return dumper.represent_scalar("tag:yaml.org,2002:str", data)
    Dumper.add_representer(str, str_presenter)
    return yaml.dump(goyaml.sorted_keys(obj), Dumper=Dumper, default_flow_style=False,
                     sort_keys=False,
                     allow_unicode=True, width=1 << 20)


def _as_list(items: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": items, "kind": "List",
            "metadata": {"resourceVersion": ""}}


def _no_names_with_selectors(names, selector: str | None, field_selector: str | None) -> None:
    if names and (selector or field_selector):  # cli-runtime's resource builder
        raise CliError("error: name cannot be provided when a selector is specified")


def _list_error(e: errors.ApiError, res, selector: str | None,
                field_selector: str | None) -> CliError:
    """A refused list as kubectl says it: cli-runtime's Selector.Visit rewrites a
    BadRequest / NotFound's message with the resource and both selectors."""
    if e.code in (400, 404) and (selector or field_selector):
        gvr = f"{res.group}/{res.version}, Resource={res.plural}"
        e = copy.copy(e)
        e.message = (f'Unable to find "{gvr}" that match label selector "{selector or ""}", '
                     f'field selector "{field_selector or ""}": {e.message}')
    return CliError(server_error(e))


def watch(ctx: Ctx, args: list[str], output: str | None, selector: str | None,
          show_labels: bool, field_selector: str | None = None) -> int:
    """`get -w`: the table, then one row per change, as kubectl prints them."""
    kind, names = _split_targets(args)[0]
    _no_names_with_selectors(names, selector, field_selector)
    try:
        res = lookup(kind)
    except UnknownResource as e:
        raise CliError(f"error: {e}") from e
    ns = None if ctx.all_namespaces or not res.namespaced else ctx.ns
    try:
        objs, rv = ctx.client.list_rv(res.plural, ns, selector, field_selector=field_selector)
    except errors.ApiError as e:
        raise _list_error(e, res, selector, field_selector) from e
    objs = [o for o in objs if not names or o["metadata"]["name"] in names]
    opts = {"now": None, "wide": output == "wide", "show_labels": show_labels,
            "all_namespaces": ctx.all_namespaces and res.namespaced}
    header = bool(objs)
    if objs:
        out(printers.print_table(res.plural, objs, **{**opts, "now": ctx.now()}).rstrip("\n"))
    try:
        while True:
            for etype, obj in ctx.client.watch(res.plural, ns, rv, timeout=300,
                                               label_selector=selector,
                                               field_selector=field_selector):
                if etype == "BOOKMARK":
                    rv = int(obj["metadata"]["resourceVersion"])
                    continue
                rv = int(obj["metadata"]["resourceVersion"])
                if names and obj["metadata"]["name"] not in names:
                    continue
                table = printers.print_table(res.plural, [obj], **{**opts, "now": ctx.now()},
                                             extra={"no_headers": header})
                header = True
                out(table.rstrip("\n"))
    except KeyboardInterrupt:
        return 0


def get(ctx: Ctx, args: list[str], output: str | None, selector: str | None,
        show_labels: bool, no_headers: bool = False, label_columns: list[str] | None = None,
        field_selector: str | None = None) -> int:
    targets = _split_targets(args)
    for _, names in targets:
        _no_names_with_selectors(names, selector, field_selector)
    rc = 0
    sections = []
    all_items = []
    single = len(targets) == 1 and len(targets[0][1]) == 1
    tables: list[tuple] = []  # (resource, objects) of each kind the server answered for
    for kind, names in targets:
        try:
            res = lookup(kind)
        except UnknownResource as e:
            raise CliError(f"error: {e}") from e
        ns = None if ctx.all_namespaces or not res.namespaced else ctx.ns
        objs = []
        try:
            if names:
                for n in names:
                    try:
                        objs.append(ctx.client.get(res.plural, n, ctx.ns if res.namespaced else None))
                    except errors.NotFound as e:
                        err(server_error(e))
                        rc = 1
            else:
                objs = ctx.client.list(res.plural, ns, selector, field_selector)
        except errors.ApiError as e:
            raise _list_error(e, res, selector, field_selector) from e
        if res.plural == "events":
            objs.sort(key=ev.order_key)
        all_items.extend(objs)
        if names and not objs:
            continue  # nothing found: no table of this kind (kubectl's infos)
        tables.append((res, objs))
        if output == "name":
            sections.append(printers.print_name(res.plural, objs))
    if output in (None, "wide"):
        # kubectl's printWithKind: NAME is <kind>/<name> when the answers are of several
        # kinds; a blank line between kinds that printed rows, unless --no-headers
        with_kind = len({res.plural for res, _ in tables}) > 1
        for res, objs in tables:
            if not objs:
                continue
            extra = {"no_headers": no_headers}
            if label_columns:
                extra["label_columns"] = label_columns
            if with_kind:
                extra["with_kind"] = res.type_name
            sections.append(printers.print_table(
                res.plural, objs, now=ctx.now(), wide=output == "wide", show_labels=show_labels,
                all_namespaces=ctx.all_namespaces and res.namespaced, extra=extra))
        if not sections and rc == 0:
            err(printers.no_resources_message(None if ctx.all_namespaces else ctx.ns))
        sep = "\n" if no_headers else "\n\n"
        out(sep.join(s.rstrip("\n") for s in sections) if sections else "")
    elif output == "name":
        out("".join(sections))
    elif output in ("yaml", "json"):
        for o in all_items:  # kubectl leaves them out unless --show-managed-fields
            (o.get("metadata") or {}).pop("managedFields", None)
        doc = all_items[0] if single and all_items else _as_list(all_items)
        if single and not all_items:
            return rc
        out(to_yaml(doc) if output == "yaml" else json.dumps(doc, indent=4))
    elif output and output.startswith("jsonpath="):
        try:
            text = jsonpath.render(output[9:], all_items[0] if single and all_items
                                   else _as_list(all_items))
        except jsonpath.JsonPathError as e:
            raise CliError(f"error: {e}") from e
        sys.stdout.write(text)  # kubectl adds no newline
        sys.stdout.flush()
    else:
        raise CliError(f'error: unable to match a printer suitable for the output format "{output}", '
                       "allowed formats are: custom-columns,custom-columns-file,go-template,"
                       "go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,"
                       "template,templatefile,wide,yaml")
    return rc


def describe(ctx: Ctx, args: list[str], selector: str | None) -> int:
    if not args:
        raise CliError("You must specify the type of resource to describe. Use \"netsim "
                       "api-resources\" for a complete list of supported resources.")
    targets = _split_targets(args)
    texts = []
    rc = 0
    for kind, names in targets:
        try:
            res = lookup(kind)
        except UnknownResource as e:
            raise CliError(f"error: {e}") from e
        if res.plural not in describer.SUPPORTED:
            raise CliError(f"error: describing {res.plural} is not supported yet")
        nsarg = ctx.ns if res.namespaced else None
        try:
            if names:
                objs = []
                for n in names:
                    try:
                        objs.append(ctx.client.get(res.plural, n, nsarg))
                    except errors.NotFound as e:
                        err(server_error(e))
                        rc = 1
            else:
                objs = ctx.client.list(res.plural, None if ctx.all_namespaces else nsarg, selector)
        except errors.ApiError as e:
            raise CliError(server_error(e)) from e
        for o in objs:
            texts.append(describer.describe(res.plural, o, related=related(ctx, res.plural, o),
                                            now=ctx.now()))
    if texts:
        out("\n\n".join(t.rstrip("\n") for t in texts))
    elif rc == 0:
        err(printers.no_resources_message(ctx.ns))
    return rc


def related(ctx: Ctx, plural: str, obj: dict) -> dict:
    """What describe shows besides the object: events, owned ReplicaSets, endpoints, pods."""
    c = ctx.client
    ns = obj["metadata"].get("namespace")
    rel: dict = {"events": ev.for_object(c, obj)}
    uid = obj["metadata"].get("uid")
    if plural == "deployments":
        rss = [r for r in c.list("replicasets", ns)
               if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])]
        from netsim.controllers import rollout
        new, old = rollout.split_replicasets(obj, rss)
        rel["new_rs"] = new
        rel["old_rs"] = list(old)  # kubectl 1.37 lists every old one, 0/0 ones too
    elif plural == "services":
        # kubectl 1.37's request: the Service's EndpointSlices, whose endpoints it prints in
        # slice order (the Endpoints object sorts addresses by IP, so it showed another order)
        rel["endpointslices"] = c.list("endpointslices", ns,
                                       f"kubernetes.io/service-name={obj['metadata']['name']}")
    elif plural in ("replicasets", "daemonsets", "statefulsets"):
        rel["pods"] = [p for p in c.list("pods", ns)
                       if any(o.get("uid") == uid for o in p["metadata"].get("ownerReferences") or [])]
    elif plural == "nodes":
        # kubectl describe node's request: the node's pods not finished, selected server side
        rel["pods"] = c.list("pods", field_selector=f"spec.nodeName={obj['metadata']['name']},"
                             "status.phase!=Succeeded,status.phase!=Failed")
    elif plural == "persistentvolumeclaims":
        rel["pods"] = c.list("pods", ns)  # describe's Used By
    elif plural == "ingresses":
        rel["services"] = c.list("services", ns)
        rel["endpoints"] = c.list("endpoints", ns)
    return rel
