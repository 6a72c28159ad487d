"""The results store: SQLModel tables on SQLite (WAL) or PostgreSQL, one commit per finished hop.

Readers (the TUI, ``agentsim show``) never block the writer and vice versa: every connection
sets ``journal_mode=WAL``, ``synchronous=NORMAL`` and a ``busy_timeout``. Any SQLAlchemy URL works;
a plain path means SQLite; ``postgresql+psycopg://user@host/db`` serves many writers at once.
The schema is created and upgraded by the Alembic revisions in :mod:`agentsim.migrations`
(every writable open brings the database to the newest revision; a reader upgrades once).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint, event, func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, create_engine, select

from .errors import StoreError
from .migrations import HEAD, current_revision, migrate, needs_upgrade
from .paths import default_db

__all__ = [
    "Run",
    "RunRead",
    "InstanceRecord",
    "InstanceRead",
    "HopTrace",
    "HopRead",
    "HopRecord",
    "RunStore",
    "Store",
    "default_db",
    "effective_status",
    "scenario_label_of",
    "batch_size_of",
    "SQLITE_PRAGMAS",
]

SQLITE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "WAL",
    "synchronous": "NORMAL",
    "busy_timeout": 30000,
    "foreign_keys": "ON",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------------------------
# tables and read models


class RunBase(SQLModel):
    scenario: str = Field(index=True)
    scenario_ref: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    scenario_fingerprint: str = ""
    #: what listings show for the workload: differs whenever the scenario does (the name above
    #: seeds the instances and cannot; see agentsim.scenario.label). Set by Store.create_run.
    scenario_label: str | None = Field(default=None, index=True)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    backend: str = Field(index=True)
    backend_name: str = ""
    model: str | None = None
    precision: str | None = None
    precision_mode: str | None = None
    kernel: str | None = None
    model_path: str | None = None
    model_sha256: str | None = None
    source_precision: str | None = None
    #: the model's size: parameters stored in its GGUF (read from the header) and the file's bytes
    model_params: int | None = None
    model_bytes: int | None = None
    backend_info: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    mode: str = "free"
    seed: int = 0
    n_instances: int = 0
    hops_per_instance: int = 0
    status: str = "running"
    error: str | None = None
    #: runs requested together (one launch) share this id; the column keeps its first name, "batch"
    launch_id: str | None = Field(default=None, sa_column=Column("batch", String, index=True))
    #: instances advanced together, their ready hops sent to the backend as one call (1: one at a
    #: time); a run written before batching existed reads None, which means 1
    batch_size: int | None = Field(default=1)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    machine: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    energy_meter: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    run_energy_j: float | None = None
    run_energy_kind: str | None = None
    run_energy_source: str | None = None
    run_energy_resolution_j: float | None = None
    run_energy_note: str | None = None
    run_energy_hops: int | None = None  # hops recorded while the run-level meter ran (resume: fewer)
    pid: int | None = None
    host: str | None = None


class Run(RunBase, table=True):
    __tablename__ = "run"
    id: int | None = Field(default=None, primary_key=True)


class RunRead(RunBase):
    id: int


class InstanceBase(SQLModel):
    run_id: int = Field(foreign_key="run.id", index=True)
    index: int
    seed: int
    vars: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    expected: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    system_prompt: str | None = None
    finished: bool = False
    success: bool | None = None
    final_correct: bool | None = None
    root_causes: list[str] = Field(default_factory=list, sa_column=Column(JSON))


class InstanceRecord(InstanceBase, table=True):
    __tablename__ = "instance"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_instance_run_index"),)
    id: int | None = Field(default=None, primary_key=True)


class InstanceRead(InstanceBase):
    id: int


class HopBase(SQLModel):
    run_id: int = Field(foreign_key="run.id")
    instance_index: int
    hop_id: str
    topo_index: int = 0
    depth: int = 1
    kind: str = "llm"
    parents: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    #: the parents error attribution used (the expected answer's inputs; None before migration
    #: 0006: read ``parents``)
    inputs: list[str] | None = Field(default=None, sa_column=Column(JSON))
    prompt: str | None = None
    completion: str | None = None
    parsed: Any = Field(default=None, sa_column=Column(JSON))
    parse_error: str | None = None
    expected: Any = Field(default=None, sa_column=Column(JSON))
    expected_given_inputs: Any = Field(default=None, sa_column=Column(JSON))
    correct: bool = False
    correct_given_inputs: bool | None = None
    parents_ok: bool = True
    error_kind: str = "none"
    error_detail: str | None = None
    root_cause: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: why generation stopped: eos | stop | grammar | length (None: not told, or no LLM call)
    stop_reason: str | None = None
    cached_tokens: int | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    ttft_s: float | None = None
    wall_s: float | None = None
    energy_j: float | None = None
    energy_kind: str = "unavailable"
    energy_source: str | None = None
    energy_resolution_j: float | None = None
    energy_note: str | None = None
    energy_below_resolution: bool | None = None  # None: the hop was not metered
    peak_mem_bytes: int | None = None
    peak_rss_bytes: int | None = None  # this hop's peak RSS (measure.PeakRSS)
    peak_gpu_mem_bytes: int | None = None  # torch's peak CUDA allocation during the hop
    # batch > 1: the hop was answered in one backend call with batch_n - 1 others. wall_s,
    # energy_j (and, when batch_timing is "attributed", prefill_s/decode_s) are then this hop's
    # share (batch_share, by tokens) of the batch call's figures, which are kept here as they were
    # measured. batch_timing: "own" (the backend answered the requests one by one: prefill_s and
    # decode_s are the hop's own) or "attributed". None everywhere at batch 1.
    batch_n: int | None = None
    batch_share: float | None = None
    batch_wall_s: float | None = None
    batch_prefill_s: float | None = None
    batch_decode_s: float | None = None
    batch_timing: str | None = None
    # where this hop's prefill/decode times and token counts came from, when the backend says so
    # per hop (its sources vary: the openai backend); None when one fact holds for the whole run
    # (then it is in the run's backend_info)
    timing_source: str | None = None
    tokens_source: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class HopTrace(HopBase, table=True):
    __tablename__ = "hop"
    __table_args__ = (
        UniqueConstraint("run_id", "instance_index", "hop_id", name="uq_hop_run_instance_hop"),
        Index("ix_hop_run_instance", "run_id", "instance_index"),
        Index("ix_hop_run_kind", "run_id", "error_kind"),
    )
    id: int | None = Field(default=None, primary_key=True)


class HopRead(HopBase):
    id: int


from . import fidelity_tables as _fidelity_tables  # noqa: E402,F401 - its tables join SQLModel.metadata

#: the hop table's columns (for fast inserts without ORM objects)
_HOP_COLUMNS: tuple[str, ...] = tuple(c.name for c in HopTrace.__table__.columns if c.name != "id")  # type: ignore[attr-defined]


@dataclass(slots=True)
class HopRecord:
    """One hop as the engine builds it and :meth:`RunStore.record_hop` stores it: the hop table's
    columns as plain typed fields (a SQLModel object costs milliseconds per hop; this costs
    microseconds, and the store inserts it with SQLAlchemy Core). ``id`` is set once stored.

    Its fields are :class:`HopBase`'s, in the same order, with the same types and defaults
    (``tests/unit/test_store.py`` holds the two to each other: a column added to, retyped or
    re-defaulted in one and not the other fails there)."""

    run_id: int
    instance_index: int
    hop_id: str
    topo_index: int = 0
    depth: int = 1
    kind: str = "llm"
    parents: list[str] = dataclass_field(default_factory=list)
    inputs: list[str] | None = None
    prompt: str | None = None
    completion: str | None = None
    parsed: Any = None
    parse_error: str | None = None
    expected: Any = None
    expected_given_inputs: Any = None
    correct: bool = False
    correct_given_inputs: bool | None = None
    parents_ok: bool = True
    error_kind: str = "none"
    error_detail: str | None = None
    root_cause: list[str] = dataclass_field(default_factory=list)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    stop_reason: str | None = None
    cached_tokens: int | None = None
    prefill_s: float | None = None
    decode_s: float | None = None
    ttft_s: float | None = None
    wall_s: float | None = None
    energy_j: float | None = None
    energy_kind: str = "unavailable"
    energy_source: str | None = None
    energy_resolution_j: float | None = None
    energy_note: str | None = None
    energy_below_resolution: bool | None = None
    peak_mem_bytes: int | None = None
    peak_rss_bytes: int | None = None
    peak_gpu_mem_bytes: int | None = None
    batch_n: int | None = None
    batch_share: float | None = None
    batch_wall_s: float | None = None
    batch_prefill_s: float | None = None
    batch_decode_s: float | None = None
    batch_timing: str | None = None
    timing_source: str | None = None
    tokens_source: str | None = None
    created_at: datetime = dataclass_field(default_factory=utcnow)
    id: int | None = None

    def columns(self) -> dict[str, Any]:
        """The hop table's columns (``id`` left out): what one INSERT needs."""
        return {c: getattr(self, c) for c in _HOP_COLUMNS}

    @classmethod
    def of(cls, row: HopBase) -> HopRecord:
        """A stored row (a :class:`HopRead` or a :class:`HopTrace`) as a record."""
        return cls(**{c: getattr(row, c) for c in _HOP_COLUMNS}, id=getattr(row, "id", None))


class RunStore(Protocol):
    """What the engine and the executors' workers ask of a store: the seam between a run and
    where it is recorded. :class:`Store` implements it over a database; the Ray hub store
    (:class:`agentsim.distributed.worker.HubStore`) over calls to the hub actor that owns one."""

    def get_run(self, run_id: int) -> RunRead: ...

    def update_run(self, run_id: int, **fields: Any) -> RunRead: ...

    def hops(self, run_id: int, instance_index: int | None = None) -> list[HopRead]: ...

    def instances(self, run_id: int) -> list[InstanceRead]: ...

    def ensure_instance(self, rec: InstanceRecord) -> InstanceRead | None: ...

    def finish_instance(self, run_id: int, index: int, **fields: Any) -> None: ...

    def record_hop(self, hop: HopRecord) -> HopRecord: ...


# --------------------------------------------------------------------------------------------
# the store



def _url(db: str | os.PathLike[str] | None, readonly: bool) -> tuple[str, bool]:
    db = str(db) if db is not None else default_db()
    if "://" in db:
        return db, db.startswith("sqlite")
    if readonly:
        path = Path(db).resolve()
        return f"sqlite:///file:{path}?mode=ro&uri=true", True
    return f"sqlite:///{db}", True


def _memory_url(url: str) -> bool:
    rest = url.split("://", 1)[1] if "://" in url else url
    return rest in ("", "/", "/:memory:") or "mode=memory" in rest


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the database telling that its disk (or its size limit) is full."""
    if not isinstance(exc, OperationalError):
        return False
    msg = str(getattr(exc, "orig", None) or exc).lower()
    return "database or disk is full" in msg or "no space left" in msg or "could not extend file" in msg


class Store:
    """A results database. ``readonly=True`` opens SQLite read-only (for viewers)."""

    def __init__(self, db: str | os.PathLike[str] | None = None, *, readonly: bool = False) -> None:
        self.db = str(db) if db is not None else default_db()
        self.readonly = readonly
        url, is_sqlite = _url(self.db, readonly)
        if is_sqlite and "://" not in self.db:
            p = Path(self.db)
            if readonly and not p.exists():
                raise StoreError(f"database {self.db} does not exist (nothing was created)",
                                 hint=f"check the path (the default, from $AGENTSIM_DB or else ./agentsim.db, is {default_db()}); "
                                      "'agentsim run ... --db PATH' records runs into a new one")
            if not readonly and p.parent and not p.parent.exists():
                raise StoreError(f"cannot create database {self.db}: folder {p.parent} does not exist")
        self.url = url
        try:
            connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 30} if is_sqlite else {}
            if readonly and url.startswith("postgresql"):
                connect_args["options"] = "-c default_transaction_read_only=on"
            kwargs: dict[str, Any] = {}
            if is_sqlite and _memory_url(url):
                # one connection for the process: an in-memory database exists only inside it
                from sqlalchemy.pool import StaticPool

                kwargs["poolclass"] = StaticPool
            self.engine: Engine = create_engine(url, connect_args=connect_args, **kwargs)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StoreError(f"cannot open database {self.db}: {exc}") from None
        if is_sqlite:
            event.listen(self.engine, "connect", self._sqlite_pragmas)
        try:
            if not readonly:
                migrate(self.engine)
            else:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1 FROM run LIMIT 1"))
                if needs_upgrade(self.engine):
                    self._upgrade_for_reading()
        except OperationalError as exc:
            msg = str(exc.orig) if getattr(exc, "orig", None) else str(exc)
            raise StoreError(f"cannot use database {self.db}: {msg}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot use database {self.db}: {exc}") from None

    def _sqlite_pragmas(self, dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            for key, value in SQLITE_PRAGMAS.items():
                if self.readonly and key == "journal_mode":
                    continue  # a read-only connection cannot change the journal mode
                cur.execute(f"PRAGMA {key}={value}")
        finally:
            cur.close()

    def _missing_columns(self) -> list[str]:
        """Columns the tables define that the database lacks (empty once it is migrated)."""
        insp = inspect(self.engine)
        missing = []
        for table in SQLModel.metadata.sorted_tables:
            if insp.has_table(table.name):
                have = {c["name"] for c in insp.get_columns(table.name)}
                missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
        return missing

    def _upgrade_for_reading(self) -> None:
        """A reader met a database written by an older agentsim: upgrade it once through a short
        writable connection (safe beside other readers: WAL on SQLite, one transaction on
        PostgreSQL)."""
        rev = current_revision(self.engine)
        try:
            Store(self.db).close()
        except StoreError as exc:
            raise StoreError(
                f"database {self.db} was written by an older agentsim (schema "
                f"{rev or 'from before migrations'}, this agentsim writes {HEAD}) and cannot be "
                f"upgraded here: {exc.message}",
                hint="open it once with write access (e.g. agentsim runs --db on a writable copy)",
            ) from None
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # runs -----------------------------------------------------------------------------

    def create_run(self, run: Run) -> RunRead:
        """Store a new run. Its ``scenario_label`` is computed here (from its scenario reference,
        or taken as given) and told apart from the label of any earlier run of another scenario."""
        from .scenario.label import base_label

        base = run.scenario_label or base_label(run.scenario_ref, run.scenario)
        with self.session() as s:
            run.scenario_label = self._free_label(s, base, run.scenario_fingerprint, before=None)
            s.add(run)
            s.commit()
            s.refresh(run)
            # two writers may have taken one label at once: the later run (higher id) yields
            settled = self._free_label(s, base, run.scenario_fingerprint, before=run.id)
            if settled != run.scenario_label:
                run.scenario_label = settled
                s.add(run)
                s.commit()
                s.refresh(run)
            return RunRead.model_validate(run)

    @staticmethod
    def _free_label(s: Session, base: str, fingerprint: str, *, before: int | None) -> str:
        from .scenario.label import label_candidates, pick_label

        q = select(Run.scenario_label, Run.scenario_fingerprint).where(
            Run.scenario_label.in_(label_candidates(base, fingerprint)))  # type: ignore[union-attr]
        if before is not None:
            q = q.where(Run.id < before)  # type: ignore[operator]
        holders: dict[str, set[str]] = {}
        for label, fp in s.exec(q).all():
            holders.setdefault(str(label), set()).add(fp or "")
        return pick_label(base, fingerprint, holders)

    def update_run(self, run_id: int, **fields: Any) -> RunRead:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run {run_id} in {self.db}")
            for k, v in fields.items():
                setattr(run, k, v)
            s.add(run)
            s.commit()
            s.refresh(run)
            return RunRead.model_validate(run)

    def get_run(self, run_id: int) -> RunRead:
        with self.session() as s:
            run = s.get(Run, run_id)
            if run is None:
                raise StoreError(f"no run {run_id} in {self.db}", hint="agentsim runs lists the runs")
            return RunRead.model_validate(run)

    def list_runs(self, *, limit: int | None = None) -> list[RunRead]:
        with self.session() as s:
            q = select(Run).order_by(Run.id.desc())  # type: ignore[union-attr]
            if limit:
                q = q.limit(limit)
            return [RunRead.model_validate(r) for r in s.exec(q).all()]

    def hop_counts(self) -> dict[int, int]:
        """Recorded hops per run, in one query."""
        with self.session() as s:
            rows = s.exec(select(HopTrace.run_id, func.count()).group_by(HopTrace.run_id)).all()
            return {int(r[0]): int(r[1]) for r in rows}

    # instances and hops ---------------------------------------------------------------

    def ensure_instance(self, rec: InstanceRecord) -> InstanceRead:
        with self.session() as s:
            existing = s.exec(
                select(InstanceRecord).where(
                    InstanceRecord.run_id == rec.run_id, InstanceRecord.index == rec.index
                )
            ).first()
            if existing is not None:
                return InstanceRead.model_validate(existing)
            s.add(rec)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                existing = s.exec(
                    select(InstanceRecord).where(
                        InstanceRecord.run_id == rec.run_id, InstanceRecord.index == rec.index
                    )
                ).one()
                return InstanceRead.model_validate(existing)
            s.refresh(rec)
            return InstanceRead.model_validate(rec)

    def finish_instance(self, run_id: int, index: int, **fields: Any) -> None:
        with self.session() as s:
            rec = s.exec(
                select(InstanceRecord).where(InstanceRecord.run_id == run_id, InstanceRecord.index == index)
            ).one()
            for k, v in fields.items():
                setattr(rec, k, v)
            rec.finished = True
            s.add(rec)
            s.commit()

    def record_hop(self, hop: HopRecord) -> HopRecord:
        """Insert one hop and commit (a SQLAlchemy Core insert, no ORM object per hop); returns
        ``hop`` with its ``id`` set. A hop already recorded is not inserted again: the stored one
        is returned (as a new record), so a resumed run never duplicates a hop."""
        values = hop.columns()
        table = HopTrace.__table__  # type: ignore[attr-defined]
        try:
            with self.engine.begin() as conn:
                # parameters rather than .values(): the compiled INSERT is cached across hops
                result = conn.execute(table.insert(), values)
                new_id = result.inserted_primary_key[0] if result.inserted_primary_key else None
        except IntegrityError:
            with self.session() as s:
                existing = s.exec(
                    select(HopTrace).where(
                        HopTrace.run_id == hop.run_id,
                        HopTrace.instance_index == hop.instance_index,
                        HopTrace.hop_id == hop.hop_id,
                    )
                ).one()
                return HopRecord.of(existing)
        hop.id = new_id
        return hop

    def instances(self, run_id: int) -> list[InstanceRead]:
        with self.session() as s:
            rows = s.exec(
                select(InstanceRecord).where(InstanceRecord.run_id == run_id).order_by(InstanceRecord.index)  # type: ignore[arg-type]
            ).all()
            return [InstanceRead.model_validate(r) for r in rows]

    def hops(self, run_id: int, instance_index: int | None = None) -> list[HopRead]:
        with self.session() as s:
            q = select(HopTrace).where(HopTrace.run_id == run_id)
            if instance_index is not None:
                q = q.where(HopTrace.instance_index == instance_index)
            q = q.order_by(HopTrace.instance_index, HopTrace.topo_index)  # type: ignore[arg-type]
            return [HopRead.model_validate(r) for r in s.exec(q).all()]

    def hop_rows(self, run_ids: Iterable[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """Hop rows as dicts (for analysis); ``columns`` limits what is read."""
        ids = list(run_ids)
        if not ids:
            return []
        cols = [getattr(HopTrace, c) for c in columns] if columns else [HopTrace]
        with self.session() as s:
            q = select(*cols).where(HopTrace.run_id.in_(ids))  # type: ignore[attr-defined]
            rows = s.exec(q).all()
            if columns:
                return [dict(zip(columns, r, strict=True)) for r in rows]
            return [HopRead.model_validate(r).model_dump() for r in rows]

    def integrity_check(self) -> str:
        """``"ok"``, or one line per problem found. Never changes the database.

        The database's own check: SQLite's ``PRAGMA integrity_check`` (pages, indexes against
        their tables, UNIQUE and NOT NULL) and ``PRAGMA foreign_key_check``; on PostgreSQL, that the
        unique keys and foreign keys exist, and, when the ``amcheck`` extension is installed in the
        database (``CREATE EXTENSION amcheck``, once, by its owner), every B-tree index of the three
        tables against its table (``bt_index_check`` with ``heapallindexed``) and the tables' pages
        (``verify_heapam``). Then, on both, what the store promises whatever the engine:
        no duplicate (run, instance, hop) or (run, instance) rows, no hop or instance without its
        run, no hop outside its run's instances, and every ``complete`` run whole (all its hops, and
        all its instances recorded and finished, so no hop of it lacks its instance).
        """
        from .integrity import postgres_problems, promise_problems, sqlite_problems

        with self.engine.connect() as conn:
            if self.url.startswith("sqlite"):
                problems = sqlite_problems(conn)
            elif self.url.startswith("postgresql"):
                problems = postgres_problems(conn)
            else:
                problems = []
            problems += promise_problems(conn)
        return "\n".join(problems) if problems else "ok"


def scenario_label_of(run: Any) -> str:
    """The run's scenario label (its scenario name for a row that has none)."""
    return run.scenario_label or run.scenario


def batch_size_of(run: Any) -> int:
    """The run's batch size: a run written before batching existed reads None, which means 1."""
    return int(getattr(run, "batch_size", None) or 1)


def effective_status(run: RunRead) -> str:
    """``running`` only while the writing process is alive; a dead writer means ``interrupted``."""
    if run.status != "running":
        return run.status
    if run.pid and run.host == socket.gethostname():
        try:
            os.kill(run.pid, 0)
        except ProcessLookupError:
            return "interrupted"
        except PermissionError:
            return "running"
    return "running"
