"""What the app says about one thing: an agent, a container, a bid, a resolution, a right,
a listing or a contract. Pure functions from the world (read, never changed) to Rich
renderables, shared by the detail screen and the wide-screen inspector."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from engine.ids import FROZEN, OPERATOR, THINKING

from .format import (
    CONTAINER_STYLE,
    CONTRACT_STYLE,
    bar,
    compute_text,
    duration,
    nbytes,
    num,
    principal_text,
    short,
    status_text,
    world_t,
)
from .history import AgentNews, history_table, timeline

if TYPE_CHECKING:
    from engine.world import World


def kv(*rows: tuple[str, Any]) -> Table:
    """Label / value pairs, labels dim and right-aligned (like `kubectl describe`)."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", justify="right", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value if isinstance(value, (Text, Table)) else Text(str(value)))
    return table


def heading(title: str) -> Text:
    return Text(f"\n{title}", "bold")


def listing_table(columns: Iterable[str], rows: Iterable[Iterable[Any]], empty: str = "none") -> RenderableType:
    rows = list(rows)
    if not rows:
        return Text(f"  {empty}", "dim")
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
    for c in columns:
        table.add_column(c, no_wrap=True)
    for r in rows:
        table.add_row(*(x if isinstance(x, Text) else Text(str(x)) for x in r))
    return table


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# -- agents ----------------------------------------------------------------------------------
def agent_detail(world: World, agent_id: str, now: float, per_minute: float | None = None,
                 stats: Any = None, compact: bool = False, news: AgentNews | None = None) -> RenderableType:
    agent = world.agents.get(agent_id)
    if agent is None:
        return Text(f"{agent_id} is gone", "dim")
    snap = agent.snapshot(now)
    ledger = world.ledger
    bucket = ledger.buckets[agent_id]
    balance = snap["compute_balance"]
    status = status_text(snap["status"])
    if snap["detail"] and snap["status"] != FROZEN:  # a freeze's debt is shown live below
        status.append(f"  {snap['detail']}", "dim")
    activity = getattr(agent.brain, "activity", None)  # an LLM thought: queued, or asking the model
    if snap["status"] == THINKING and activity is not None and activity():
        status.append(f"  {activity()}", "dim")
    thaw = bucket.time_until_non_negative(now) if balance < 0 else 0.0
    cfg = agent.config_artifact
    parts: list[RenderableType] = [
        kv(
            ("status", status),
            ("scrip", num(snap["scrip"])),
            ("compute", compute_text(balance) + Text(f" / {bucket.capacity:g}", "dim")),
            ("debt", Text(f"{-balance:.2f}, thaws in {duration(thaw)}", "bold blue") if balance < 0 else Text("none", "dim")),
            ("rate", f"{bucket.rate:g}/s"),
            ("actions", f"{num(snap['actions'])}" + (f"  ({per_minute:,.0f}/min)" if per_minute is not None else "")),
            ("refused", num(snap["refused"])),
            ("frozen", f"{num(snap['times_frozen'])} times"),
            ("failures", num(snap["failures"]) + (f"  last: {agent.last_error}" if agent.last_error else "")),
            ("last action", snap["last_action"] or "—"),
        ),
        *_llm_rows(agent),
        heading("Config right"),
        kv(
            ("owner", principal_text(cfg.owner) + (Text("  (its own)", "dim") if cfg.owner == agent_id else Text(""))),
            ("brain", str(cfg.content.get("brain"))),
            ("params", short(_json(cfg.content.get("params", {})), 70)),
            ("think delay", f"{cfg.content.get('think_delay', 0.0):g}s"),
            ("version", f"{cfg.version}, changed at {world_t(cfg.updated)}"),
            ("parent", agent.parent),
        ),
    ]
    if compact:
        return Group(*parts)
    # The story first: what it did, what it cost, why it froze, who rescued it.
    parts[1:1] = [heading("History, newest first"), history_table(timeline(world, agent_id, news, now))]
    owned = Counter(a.kind for a in world.artifacts.owned_by(agent_id) if a.kind != "config" or a.id != cfg.id)
    parts += [
        heading("Holdings"),
        kv(
            ("artifacts", ", ".join(f"{n} {k}" for k, n in sorted(owned.items())) or "none"),
            ("disk", f"{nbytes(ledger.disk_used[agent_id])} of {nbytes(ledger.disk_quota[agent_id])}"),
            ("open bids", ", ".join(f"{b.artifact_id} {b.amount}" for b in world.oracle.bids.values() if b.bidder == agent_id) or "none"),
            ("listings", ", ".join(f"{x.artifact_id} at {x.price}" for x in world.market.open.values() if x.seller == agent_id) or "none"),
        ),
        heading("Loans"),
        _loans_of(world, agent_id, now),
    ]
    if stats is not None:
        parts += [heading("Container"), _stats_kv(world, stats)]
    return Group(*parts)


def _llm_rows(agent: Any) -> list[RenderableType]:
    """An LLM agent's thinking: turns, valid answers, tokens per turn (new and cached), dollars."""
    usage = getattr(agent.brain, "usage", None)
    if usage is None:
        return []
    u = usage()
    per = u["per_answer"]
    last = getattr(agent.brain, "last_tokens", None)
    return [heading("LLM"), kv(
        ("turns", f"{num(u['turns'])}, {num(u['valid_answers'])} valid, {num(u['failed_turns'])} failed"
         + (f", {num(u['replay_missing'])} not in the recording" if u["replay_missing"] else "")),
        ("tokens/turn", (f"prompt {per['prompt_tokens']:g} ({per['new_prompt_tokens']:g} new), "
                         f"completion {per['completion_tokens']:g}")),
        ("last turn", "—" if last is None else f"prompt {last[0]} ({last[0] - last[1]} new), completion {last[2]}"),
        ("tokens", f"{num(u['prompt_tokens'])} prompt, {num(u['completion_tokens'])} completion"),
        ("dollars", f"${u['dollars']:.4f}"),
    )]


def _loans_of(world: World, principal: str, now: float) -> RenderableType:
    contracts = world.contracts
    rows = []
    for cid, art in contracts.contracts.items():
        c = art.content
        holder = contracts.holder(cid)
        if principal not in (c["lender"], c["debtor"], holder):
            continue
        role = "debtor" if c["debtor"] == principal else ("holder" if holder == principal else "lender")
        rows.append((cid, role, Text(c["status"], CONTRACT_STYLE.get(c["status"], "")), c["principal"], contracts.owed(c, now)))
    credit = contracts.credit_record(principal, now)
    record = Text(
        f"  credit: borrowed {credit['borrowed']}, {credit['repaid']} repaid, {credit['defaulted']} defaulted, "
        f"{credit['outstanding']} outstanding",
        "bold red" if credit["defaulted"] else "dim",
    )
    return Group(listing_table(("contract", "role", "status", "principal", "owed"), rows[-8:]), record)


# -- containers ------------------------------------------------------------------------------
def _stats_kv(world: World, s: Any) -> Table:
    mem_frac = s.memory_bytes / s.memory_limit_bytes if s.memory_limit_bytes else float("nan")
    memory = Text(f"{nbytes(s.memory_bytes)}")
    if s.memory_limit_bytes:
        memory = Text.assemble(bar(mem_frac, 12), f" {nbytes(s.memory_bytes)} of {nbytes(s.memory_limit_bytes)}")
    cfg = world.config.sandbox
    return kv(
        ("backend", f"{s.backend} on {s.host}"),
        ("status", Text(s.status, CONTAINER_STYLE.get(s.status, ""))),
        ("cpu", f"{s.cpu_percent:.0f}% of {s.cpus:g} cpus"),
        ("memory", memory),
        ("pids", f"{s.pids} of {cfg.pids}"),
        ("restarts", Text(str(s.restarts), "yellow" if s.restarts else "")),
        ("OOM kills", Text(str(s.oom_kills), "bold red" if s.oom_kills else "")),
        ("limits", (f"{cfg.memory_mb} MiB memory, {cfg.pids} pids, {cfg.tmpfs_mb} MiB tmpfs, "
                    f"{cfg.timeout:g}s per call, no network, read-only root")),
    )


def container_detail(world: World, agent_id: str, stats: Any, incidents: Iterable[Any]) -> RenderableType:
    reason = getattr(world, "sandbox_reason", None) or getattr(world.sandbox, "name", "no sandbox")
    parts: list[RenderableType] = [kv(("sandbox", reason)), Text("")]
    if stats is None:
        parts.append(Text("no reading yet", "dim"))
    else:
        parts.append(_stats_kv(world, stats))
    rows = [(world_t(ev.t), Text(ev.failure, "bold red"), ev.detail) for ev in incidents if ev.agent_id == agent_id]
    parts += [heading("Incidents"), listing_table(("at", "failure", "detail"), rows[-12:])]
    agent = world.agents.get(agent_id)
    if agent is not None:
        bucket = world.ledger.buckets[agent_id]
        parts += [
            heading("Agent"),
            kv(("status", status_text(agent.status)), ("rate", f"{bucket.rate:g}/s → {world.cpus_for(agent_id):g} cpus")
               if hasattr(world, "cpus_for") else ("rate", f"{bucket.rate:g}/s")),
        ]
    return Group(*parts)


# -- oracle ----------------------------------------------------------------------------------
def bid_detail(world: World, artifact_id: str, now: float) -> RenderableType:
    oracle = world.oracle
    ranked = oracle.ranked()
    bid = next((b for b in ranked if b.artifact_id == artifact_id), None)
    if bid is None:
        return Text(f"no open bid on {artifact_id} (resolved or cancelled)", "dim")
    rank = ranked.index(bid) + 1
    k = oracle.cfg.slots
    price = ranked[k].amount if len(ranked) > k else oracle.cfg.min_bid
    art = world.artifacts.by_id.get(artifact_id)
    standing = (
        Text(f"winning (rank {rank} of {len(ranked)}; would pay {price} now)", "green")
        if rank <= k else Text(f"outbid (rank {rank} of {len(ranked)}; {k} slots)", "yellow")
    )
    parts: list[RenderableType] = [
        kv(
            ("bidder", principal_text(bid.bidder)),
            ("artifact", artifact_id),
            ("amount", f"{bid.amount} held"),
            ("placed", world_t(bid.t)),
            ("standing", standing),
            ("resolves in", duration(world.next_resolution_in(now))),
        )
    ]
    if art is not None:
        parts += [heading("Artifact"), _artifact_kv(art)]
    return Group(*parts)


def _artifact_kv(art: Any) -> Table:
    return kv(
        ("id", art.id),
        ("kind", art.kind),
        ("owner", principal_text(art.owner)),
        ("size", nbytes(art.size)),
        ("version", f"{art.version}, updated {world_t(art.updated)}"),
        ("content", short(art.content, 200)),
    )


def resolution_detail(record: dict[str, Any]) -> RenderableType:
    winners = [
        (w["bidder"], w["artifact"], w["bid"], w["paid"], "—" if w["score"] is None else w["score"],
         Text(str(w["minted"]), "green" if w["minted"] else ""), w["error"] or "")
        for w in record["winners"]
    ]
    losers = [(x["bidder"], x["artifact"], x["bid"]) for x in record["losers"]]
    void = [(x["bidder"], x["artifact"], x["amount"]) for x in record["void"]]
    ubi = record["ubi"]
    return Group(
        kv(
            ("resolution", f"#{record['index']} at {world_t(record['t'])} ({record['trigger']})"),
            ("bids", f"{record['bids']} for {record['slots']} slots"),
            ("price", "—" if record["price"] is None else str(record["price"])),
            ("minted", num(record["minted"])),
            ("UBI", f"pool {ubi['pool']} to {ubi['recipients']} agents: {ubi['share']} each"
                    + (f", +1 to the first {ubi['remainder']}" if ubi.get("remainder") else "")),
        ),
        heading("Winners"),
        listing_table(("bidder", "artifact", "bid", "paid", "score", "minted", "error"), winners),
        heading("Losers (refunded)"),
        listing_table(("bidder", "artifact", "bid"), losers),
        heading("Void (no longer owned)"),
        listing_table(("bidder", "artifact", "amount"), void),
    )


# -- rights and the market -------------------------------------------------------------------
def config_detail(world: World, agent_id: str) -> RenderableType:
    agent = world.agents.get(agent_id)
    if agent is None:
        return Text(f"{agent_id} is gone", "dim")
    cfg = agent.config_artifact
    listing = world.market.by_artifact.get(cfg.id)
    owner = principal_text(cfg.owner)
    if listing:
        owner = Text.assemble(owner, (f"  (listed as {listing} by {world.market.seller_of(cfg.id)})", "cyan"))
    return Group(
        kv(
            ("right", cfg.id),
            ("agent", f"{agent_id} ({agent.status})"),
            ("owner", owner),
            ("editable by you", Text("yes", "green") if cfg.owner == OPERATOR else Text("no: only its owner may change it", "dim")),
            ("version", f"{cfg.version}, updated {world_t(cfg.updated)}"),
        ),
        heading("Configuration"),
        kv(*((k, short(_json(v), 200)) for k, v in sorted(cfg.content.items()))),
    )


def slice_detail(world: World, artifact_id: str) -> RenderableType:
    art = world.artifacts.by_id.get(artifact_id)
    if art is None:
        return Text(f"{artifact_id} is gone (dissolved)", "dim")
    return kv(
        ("rate slice", art.id),
        ("owner", principal_text(art.owner)),
        ("rate", f"{art.content['rate']:g}/s, flowing to its owner's bucket"),
        ("created", world_t(art.created)),
        ("listed", world.market.by_artifact.get(art.id) or "no"),
    )


def listing_detail(world: World, listing_id: str) -> RenderableType:
    market = world.market
    listing = market.open.get(listing_id) or next((x for x in market.closed if x.id == listing_id), None)
    if listing is None:
        return Text(f"{listing_id} is gone", "dim")
    art = world.artifacts.by_id.get(listing.artifact_id)
    parts: list[RenderableType] = [
        kv(
            ("listing", listing.id),
            ("status", listing.status + (f" to {listing.sold_to}" if listing.sold_to else "")),
            ("seller", principal_text(listing.seller)),
            ("price", f"{listing.price} scrip"),
            ("reserved for", principal_text(listing.buyer) if listing.buyer else Text("anyone", "dim")),
            ("listed", world_t(listing.t)),
        )
    ]
    if art is not None:
        parts += [heading("Artifact"), _artifact_kv(art)]
    return Group(*parts)


# -- contracts -------------------------------------------------------------------------------
def contract_detail(world: World, contract_id: str, now: float) -> RenderableType:
    contracts = world.contracts
    art = contracts.contracts.get(contract_id)
    if art is None:
        return Text(f"{contract_id} is gone", "dim")
    c = art.content
    status = Text(c["status"], CONTRACT_STYLE.get(c["status"], ""))
    if c["status"] == "defaulted":
        status.append(f"  outstanding {c['outstanding']}", "bold red")
    due = "—"
    if c["due"] is not None:
        left = c["due"] - now
        due = f"{world_t(c['due'])} ({'in ' + duration(left) if left > 0 else duration(-left) + ' ago'})"
    history = [
        (world_t(h["t"]), Text(h["what"], "bold red" if h["what"] == "defaulted" else ""), h["amount"], h["holder"])
        for h in c["history"]
    ]
    credit = contracts.credit_record(c["debtor"], now)
    return Group(
        kv(
            ("contract", contract_id),
            ("status", status),
            ("lender", principal_text(c["lender"])),
            ("debtor", principal_text(c["debtor"])),
            ("holder", principal_text(contracts.holder(contract_id)) + Text("  (payments go here)", "dim")),
            ("principal", num(c["principal"])),
            ("interest", f"{c['rate_per_day']:g} per day, simple"),
            ("owed now", num(contracts.owed(c, now))),
            ("repaid", num(c["repaid"])),
            ("due", due),
        ),
        heading("History"),
        listing_table(("at", "what", "amount", "holder"), history),
        heading(f"Credit record of {c['debtor']}"),
        kv(
            ("borrowed", num(credit["borrowed"])),
            ("active", credit["active"]),
            ("repaid", credit["repaid"]),
            ("defaulted", Text(str(credit["defaulted"]), "bold red" if credit["defaulted"] else "")),
            ("outstanding", num(credit["outstanding"])),
        ),
    )

