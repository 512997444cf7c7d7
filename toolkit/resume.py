"""What an interrupted run already holds, for ``iisfleet run --resume RUN_DIR`` (docs/run.md, "Resuming").

A host whose ``host.json`` says it finished with status ``ok`` is not contacted again; on any other host,
the steps recorded ``ok`` whose envelope is on disk are kept (their facts still steer the later steps'
``when``) and only the others run. A raw-artefact step that ran part way resumes from the partial files it
left (``toolkit.artefacts.have_from_disk``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import InputError
from toolkit.models import HostResult, StepError, StepResult
from toolkit.rundir import HOST_SCHEMA, RUN_SCHEMA, host_dir_name


@dataclass
class PreviousHost:
    """One host as the interrupted run left it."""

    document: dict[str, Any]
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.document.get("finished") is True and self.document.get("status") == "ok"

    def kept_step(self, collector_id: str) -> StepResult | None:
        """The step's earlier result when it succeeded and its envelope is on disk, else None (run it)."""
        for step in self.document.get("steps") or []:
            if isinstance(step, dict) and step.get("collector") == collector_id and step.get("status") == "ok":
                envelope = self.envelopes.get(collector_id)
                if envelope is None:
                    return None
                return StepResult(collector=collector_id, status="ok", duration_s=float(step.get("duration_s") or 0),
                                  envelope=envelope)
        return None

    def result(self) -> HostResult:
        """The host's recorded result, as ``run_playbook`` returns it."""
        doc = self.document
        return HostResult(host=doc["host"], address=str(doc.get("address") or ""), transport=doc.get("transport", "winrm"),
                          status=doc.get("status", "ok"), error=_error(doc.get("error")),
                          steps=[StepResult(collector=s.get("collector"), status=s.get("status"),
                                            duration_s=float(s.get("duration_s") or 0), error=_error(s.get("error")),
                                            skipped_reason=s.get("skipped_reason"), envelope=self.envelopes.get(s.get("collector")))
                                 for s in doc.get("steps") or [] if isinstance(s, dict)],
                          duration_s=float(doc.get("duration_s") or 0), clock_offset_s=doc.get("clock_offset_s"))


def _error(value: Any) -> StepError | None:
    if not isinstance(value, dict):
        return None
    return StepError(category=value.get("category", "protocol"), message=str(value.get("message") or ""),
                     explanation=value.get("explanation"))


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_previous(run_dir: Path) -> tuple[dict[str, Any], dict[str, PreviousHost]]:
    """run.json of the run to resume, and what each of its hosts holds.

    Raises:
        InputError: not a run directory, or a run.json that is not one.
    """
    meta = _read(run_dir / "run.json")
    if not isinstance(meta, dict) or meta.get("schema") != RUN_SCHEMA:
        raise InputError("not a run directory iisfleet can resume (no readable run.json)", path=str(run_dir))
    hosts: dict[str, PreviousHost] = {}
    for name in meta.get("hosts") or []:
        folder = run_dir / "hosts" / host_dir_name(str(name))
        document = _read(folder / "host.json")
        if not isinstance(document, dict) or document.get("schema") != HOST_SCHEMA or document.get("host") != name:
            continue  # never started (or its host.json was torn): it runs from the start
        envelopes = {}
        for path in folder.glob("*.json"):
            envelope = _read(path) if path.name != "host.json" else None
            if isinstance(envelope, dict) and isinstance(envelope.get("collector"), str):
                envelopes[envelope["collector"]] = envelope
        hosts[name] = PreviousHost(document=document, envelopes=envelopes)
    return meta, hosts
