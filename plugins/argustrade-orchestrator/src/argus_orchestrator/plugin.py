"""Plugin ``orchestrator`` (distribution ``argustrade-orchestrator``): ledger tables and
settings of the AI orchestrator.

Migration set ``orchestrator``: ``strategy_versions`` (every version ever
proposed, with source, hash, parent, prompt hash, model, gate results, status
and the version it replaced in the slot), ``strategy_events`` (every status
change and its reason),
``thoughts`` (the thought spool: every model call in full), ``orchestrator_cycles``
and ``budgets`` (daily token and cost totals, and the latest time charged to each day).

The commands (``argus orchestrate``, ``argus sandbox check``, ``argus strategies
list|show|diff|promote|rollback``, ``argus thoughts [CYCLE]``) are
:mod:`argus_orchestrator.commands` (entry point group ``argus.commands``).
"""

from __future__ import annotations

import apsw

from argus_core import Migrations, hookimpl


@hookimpl
def config_class() -> type:
    """``[plugins.orchestrator]`` is validated by :class:`OrchestratorSettings` (the slot
    is checked against ``[run] strategies`` when ``argus orchestrate`` starts)."""
    from argus_orchestrator.config import OrchestratorSettings

    return OrchestratorSettings


@hookimpl
def register_migrations(migrations: Migrations) -> None:
    """The orchestrator's tables (migration set ``orchestrator``)."""
    orch = migrations.set("orchestrator")

    @orch
    def m001_orchestrator_tables(conn: apsw.Connection) -> None:
        conn.execute("""
        create table strategy_versions (
            version_id text primary key, slot text not null, source text not null,
            source_hash text not null, parent_id text, prompt_hash text, model text,
            cycle_id text, status text not null, reason text not null default '',
            validation_json text, gate_json text, shadow_json text,
            created_ns integer not null, updated_ns integer not null);
        create index strategy_versions_slot on strategy_versions(slot, status);
        create table strategy_events (
            id integer primary key autoincrement, version_id text not null,
            ts_ns integer not null, from_status text, to_status text not null,
            reason text not null, actor text not null);
        create table thoughts (
            thought_id text primary key, cycle_id text not null, seq integer not null,
            purpose text not null, model text not null, system_prompt text not null,
            prompt text not null, prompt_hash text not null, response_text text,
            response_json text, stop_reason text, input_tokens integer not null default 0,
            output_tokens integer not null default 0, cost_usd text not null default '0',
            status text not null, error text, request_id text, ts_ns integer not null);
        create index thoughts_cycle on thoughts(cycle_id, seq);
        create table orchestrator_cycles (
            cycle_id text primary key, slot text not null, started_ns integer not null,
            ended_ns integer, status text not null, outcome text, reason text,
            incumbent_id text, candidate_id text, benchmarks_json text,
            tokens integer not null default 0, cost_usd text not null default '0');
        create table budgets (
            day text primary key, calls integer not null, tokens integer not null,
            cost_usd text not null);
        """)

    @orch
    def m002_replaced_version(conn: apsw.Connection) -> None:
        # The version a live one took the slot from: what rolling it back reinstates (its
        # parent is the version live when it was *written*, which may never have traded
        # or been replaced since).
        conn.execute("alter table strategy_versions add column replaced_id text")

    @orch
    def m003_budget_last_ns(conn: apsw.Connection) -> None:
        # The latest time (the day budget's clock, nanoseconds) a call was charged to the
        # day: a restarted live run never reads its day earlier than the latest spend
        # (a restart with the wall clock stepped back reopened the day before).
        conn.execute("alter table budgets add column last_ns integer")
