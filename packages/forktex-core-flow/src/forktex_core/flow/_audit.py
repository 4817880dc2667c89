# SPDX-License-Identifier: AGPL-3.0-or-later OR LicenseRef-ForkTex-Commercial
# SPDX-FileCopyrightText: 2026 ForkTex <info@forktex.com>
"""The versioning gate behind ``forktex-flow audit``.

Every registered workflow (and graph) has an AST fingerprint. The manifest, a JSON file
committed next to the code, records the fingerprint of each ``(name, version)``::

    {"format": 1, "workflows": {"cloud.deploy": {"1": {"hash": "...", "patches": []}}}}

The audit fails when a body's fingerprint differs from the manifest for the same version
(replay of in-flight runs would silently diverge), unless the only difference is new
``if ctx.patched("name"):`` branches. ``--update`` records the current fingerprints after a
conscious bump.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import VersionGateError

if TYPE_CHECKING:
    from ._flow import Flow

FORMAT = 1
DEFAULT_MANIFEST = "forktex-flow.manifest.json"

OK = "ok"
PATCHED = "patched"
CHANGED = "changed"
NEW = "new"
UNHASHABLE = "unhashable"
FAILING = (CHANGED, NEW, UNHASHABLE)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """The verdict for one ``(workflow, version)``."""

    workflow: str
    version: int
    status: str
    message: str

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass(slots=True)
class AuditReport:
    """All verdicts of one audit; ``ok`` when none fails."""

    manifest: Path
    entries: list[AuditEntry] = field(default_factory=list)
    updated: bool = False

    @property
    def ok(self) -> bool:
        return self.updated or not any(e.failed for e in self.entries)

    def raise_for_changes(self) -> None:
        """Raise :class:`VersionGateError` listing every failing workflow and version."""
        failing = [e for e in self.entries if e.failed]
        if failing and not self.updated:
            raise VersionGateError("; ".join(e.message for e in failing))


def load_manifest(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """The ``workflows`` table of a manifest file (VersionGateError if unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VersionGateError(
            f"no manifest at {path}; create it with `forktex-flow audit ENTRYPOINT --update` "
            "and commit it"
        ) from None
    except (OSError, ValueError) as exc:
        raise VersionGateError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise VersionGateError(f"{path} is not a forktex-flow manifest (format {FORMAT})")
    table = data.get("workflows")
    if not isinstance(table, dict):
        raise VersionGateError(f"{path}: 'workflows' must be an object")
    return table


def current_manifest(flow: Flow) -> dict[str, dict[str, dict[str, Any]]]:
    """The manifest table describing the workflows registered on ``flow`` right now."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for (name, version), fp in sorted(flow.fingerprints().items()):
        entry: dict[str, Any] = {"hash": fp.hash, "patches": list(fp.patches)}
        if name in flow.graphs and version in flow.graphs[name]:
            entry["kind"] = "graph"
        table.setdefault(name, {})[str(version)] = entry
    return table


def write_manifest(path: Path, table: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Write the manifest (sorted, one entry per line-ish, stable for diffs)."""
    ordered = {
        name: {v: table[name][v] for v in sorted(table[name], key=int)} for name in sorted(table)
    }
    text = json.dumps({"format": FORMAT, "workflows": ordered}, indent=2, sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")


def audit(
    flow: Flow, manifest: str | Path = DEFAULT_MANIFEST, *, update: bool = False
) -> AuditReport:
    """Compare ``flow``'s fingerprints with ``manifest``; with ``update`` rewrite it.

    Example::

        report = audit(flow, "forktex-flow.manifest.json")
        report.raise_for_changes()
    """
    path = Path(manifest)
    report = AuditReport(path)
    try:
        stored = load_manifest(path)
    except VersionGateError:
        if not update or path.exists():
            raise
        stored = {}
    for (name, version), fp in sorted(flow.fingerprints().items()):
        label = f"workflow {name!r} version {version}"
        old = stored.get(name, {}).get(str(version))
        if fp.hash is None:
            report.entries.append(
                AuditEntry(name, version, UNHASHABLE, f"{label}: cannot fingerprint: {fp.error}")
            )
        elif old is None:
            report.entries.append(
                AuditEntry(
                    name,
                    version,
                    NEW,
                    f"{label} is not in the manifest; record it with --update",
                )
            )
        elif old.get("hash") == fp.hash:
            report.entries.append(AuditEntry(name, version, OK, f"{label}: unchanged"))
        else:
            known = set(old.get("patches") or [])
            added = sorted(set(fp.patches) - known)
            if added and fp.hash_without(added) == old.get("hash"):
                report.entries.append(
                    AuditEntry(
                        name,
                        version,
                        PATCHED,
                        f"{label}: only adds patch(es) {', '.join(added)}; record them with "
                        "--update",
                    )
                )
            else:
                report.entries.append(
                    AuditEntry(
                        name,
                        version,
                        CHANGED,
                        f"{label} changed without a version bump: bump version= (in-flight "
                        "runs keep the old version), wrap the change in "
                        '`if ctx.patched("fix-name"):`, or run --update if no run of this '
                        "version can be in flight",
                    )
                )
    if update:
        table = {name: dict(versions) for name, versions in stored.items()}
        for name, versions in current_manifest(flow).items():
            table.setdefault(name, {}).update(versions)
        write_manifest(path, table)
        report.updated = True
    return report
