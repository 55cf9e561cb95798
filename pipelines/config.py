"""flowlens.toml: loading and validation (pydantic v2). Errors are one line naming the key and the file."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import types
import typing
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FlowState = Literal["backlog", "active", "queue", "approval", "decision", "blocked", "done"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Tried after the configured patterns when use_default_patterns is on (docs/metrics.md, "Flow states").
DEFAULT_PATTERNS: list[tuple[str, str]] = [
    ("pending approval|awaiting approval|sign.?off|approval|review", "approval"),
    ("needs decision|awaiting input|awaiting decision|escalated|on hold", "decision"),
    ("blocked|impeded|waiting on dependency", "blocked"),
    ("ready for|to deploy|waiting for", "queue"),
]


class ConfigError(Exception):
    """A user mistake in flowlens.toml or the environment; the message is one line naming the key or the
    variable and what to do. The command exits with EXIT_CONFIG."""


EXIT_CONFIG = 2  # `flowlens check` and `flowlens run`: the configuration (file or environment) is wrong


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"invalid regular expression {value!r}: {e}") from None
    return value


def _check_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/Berlin')") from None
    return value


def _check_file(value: str | None) -> str | None:
    if value is not None and not Path(value).expanduser().is_file():
        raise ValueError(f"no such file {value!r}: give the path of a PEM file holding your CA's certificates")
    return str(Path(value).expanduser()) if value is not None else None


class JiraSource(_Strict):
    enabled: bool = True
    ca_bundle: str | None = None  # PEM file of the CAs to trust for this site; default REQUESTS_CA_BUNDLE/certifi
    projects: list[str] = Field(default_factory=list)
    jql: str | None = None
    overlap_minutes: int = Field(10, ge=0)
    reconcile_every_runs: int = Field(7, ge=1)
    remote_links: bool = True  # a request per changed issue; off: pull requests link by the keys they name
    # What names an issue in a pull request's branch, title or body (matched case-insensitively; the whole
    # match is the key). Default: the Jira key syntax, word-bounded; only keys of synced issues link.
    issue_key_pattern: str | None = None

    _ca = field_validator("ca_bundle")(_check_file)

    @field_validator("issue_key_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
            if re.search(r"\(\?[=!<]|\\[1-9]", value):
                raise ValueError("lookarounds and back-references are not supported (RE2 syntax)")
        return value


class GithubSource(_Strict):
    enabled: bool = True
    api: Literal["graphql", "rest"] = "graphql"
    organizations: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    overlap_minutes: int = Field(10, ge=0)
    ca_bundle: str | None = None

    _ca = field_validator("ca_bundle")(_check_file)

    @field_validator("repositories")
    @classmethod
    def _repos(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if name.count("/") != 1 or not all(part.strip() for part in name.split("/")):
                raise _KeyedError(str(i), f"{name!r} must be written 'org/repo'")
        return v

    @field_validator("organizations")
    @classmethod
    def _orgs(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if not name.strip() or "/" in name:
                raise _KeyedError(str(i), f"{name!r} is not an organisation's login (write 'acme', not "
                                  "'acme/repo'; single repositories go in sources.github.repositories)")
        return v


class Sources(_Strict):
    jira: JiraSource = Field(default_factory=JiraSource)
    github: GithubSource = Field(default_factory=GithubSource)


class StatusPattern(_Strict):
    pattern: str
    state: FlowState

    _re = field_validator("pattern")(_check_regex)


class StatusMapping(_Strict):
    use_default_patterns: bool = True
    patterns: list[StatusPattern] = Field(default_factory=list)
    # project key -> {status name -> state}
    projects: dict[str, dict[str, FlowState]] = Field(default_factory=dict)
    github_labels: dict[str, FlowState] = Field(default_factory=dict)

    def all_patterns(self) -> list[tuple[str, str]]:
        """Configured patterns first, then the defaults (if on); the first match wins."""
        own = [(p.pattern, p.state) for p in self.patterns]
        return own + (DEFAULT_PATTERNS if self.use_default_patterns else [])


class Member(_Strict):
    person: str
    valid_from: date | datetime | None = None
    valid_to: date | datetime | None = None

    @field_validator("person")
    @classmethod
    def _person(cls, v: str) -> str:
        if not re.match(r"^(jira|github):.+", v):
            raise ValueError(f"person {v!r} must be 'jira:<accountId or user key>' or 'github:<login>'")
        return v

    @model_validator(mode="after")
    def _period(self) -> Member:
        if self.valid_from is not None and self.valid_to is not None and \
                instant(self.valid_to) <= instant(self.valid_from):
            raise _KeyedError("valid_to", f"valid_to ({self.valid_to}) must be after valid_from "
                              f"({self.valid_from}); valid_to is exclusive: swap them or drop one")
        return self

    def period(self) -> tuple[datetime, datetime]:
        lo = instant(self.valid_from) if self.valid_from is not None else datetime.min.replace(tzinfo=UTC)
        hi = instant(self.valid_to) if self.valid_to is not None else datetime.max.replace(tzinfo=UTC)
        return lo, hi


def instant(v: date | datetime) -> datetime:
    """A TOML date (midnight UTC), local date-time (UTC) or offset date-time, as an aware UTC instant."""
    if not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    return (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC)


class Team(_Strict):
    key: str
    name: str | None = None
    calendar: str = "default"
    github_team: str | None = None
    jira_projects: list[str] = Field(default_factory=list)
    github_repositories: list[str] = Field(default_factory=list)
    members: list[Member] = Field(default_factory=list)


class Identity(_Strict):
    jira: str
    github: str


class Calendar(_Strict):
    timezone: str = "UTC"
    workdays: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    hours: tuple[time, time] = (time(9), time(17))
    holidays: list[date] = Field(default_factory=list)

    _tz = field_validator("timezone")(_check_tz)

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v: object) -> object:
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, str) for x in v):
            try:
                return tuple(time.fromisoformat(x) for x in v)
            except ValueError:
                raise ValueError(f"hours must be two 'HH:MM' times, got {list(v)}") from None
        return v

    @model_validator(mode="after")
    def _order(self) -> Calendar:
        if self.hours[0] >= self.hours[1]:
            raise ValueError("hours: the start must be before the end")
        return self


class Bots(_Strict):
    names: list[str] = Field(default_factory=list)


class Decisions(_Strict):
    github_labels: list[str] = Field(default_factory=lambda: ["needs-decision", "needs-discussion"])


PSEUDONYM_KEY_ENV = "FLOWLENS_PSEUDONYM_KEY"


class Privacy(_Strict):
    min_group_size: int = Field(3, ge=1)
    # Person ids and names in the published warehouse and the report become keyed hashes; the key comes from
    # the environment (PSEUDONYM_KEY_ENV) and is never stored (docs/privacy.md).
    pseudonymize: bool = False


class Publish(_Strict):
    # also write published/parquet/<schema>/<table>.parquet, for tools without a DuckDB driver
    parquet: bool = False


class Report(_Strict):
    # report.html covers the last `weeks` weeks up to the run's as_of
    weeks: int = Field(12, ge=1, le=520)


class Housekeeping(_Strict):
    # at the start of each run: landing extracts (once loaded) and Dagster run history older than this many
    # days are removed; 0 keeps everything (pipelines/housekeeping.py)
    landing_days: int = Field(30, ge=0)
    run_history_days: int = Field(90, ge=0)


class Schedule(_Strict):
    cron: str = "0 2 * * *"
    timezone: str = "UTC"

    _tz = field_validator("timezone")(_check_tz)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from dagster._utils.schedules import is_valid_cron_string

        if not is_valid_cron_string(v):
            raise ValueError(f"{v!r} is not a cron expression: five fields, minute hour day month weekday, "
                             "e.g. '0 2 * * *' for 02:00 every day")
        return v


class Config(_Strict):
    sources: Sources = Field(default_factory=Sources)
    status_mapping: StatusMapping = Field(default_factory=StatusMapping)
    teams: list[Team] = Field(default_factory=list)
    identities: list[Identity] = Field(default_factory=list)
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    bots: Bots = Field(default_factory=Bots)
    decisions: Decisions = Field(default_factory=Decisions)
    privacy: Privacy = Field(default_factory=Privacy)
    publish: Publish = Field(default_factory=Publish)
    report: Report = Field(default_factory=Report)
    schedule: Schedule = Field(default_factory=Schedule)
    housekeeping: Housekeeping = Field(default_factory=Housekeeping)
    path: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Config:
        first: dict[str, int] = {}
        for i, t in enumerate(self.teams):
            if t.key in first:
                raise _KeyedError(f"teams.{i}.key", f"duplicate team key {t.key!r} (also teams.{first[t.key]}.key): "
                                  "give each team its own key")
            first[t.key] = i
        for i, t in enumerate(self.teams):
            if t.key in ("unknown", "other"):
                raise _KeyedError(f"teams.{i}.key", f"{t.key!r} is reserved (items without a team, small teams); "
                                  "pick another key")
            if t.calendar != "default" and t.calendar not in self.calendars:
                raise _KeyedError(f"teams.{i}.calendar", f"unknown calendar {t.calendar!r}; define "
                                  f"[calendars.{t.calendar}]")
        self._identities_unique()
        self._members_once()
        return self

    def _identities_unique(self) -> None:
        """A GitHub login or a Jira id in two identities would make one id two people."""
        for side in ("github", "jira"):
            seen: dict[str, int] = {}
            for i, ident in enumerate(self.identities):
                value = getattr(ident, side)
                if value in seen:
                    raise _KeyedError(f"identities.{i}.{side}", f"{value!r} is already in identities.{seen[value]}: "
                                      "one id belongs to one person; merge the two entries or remove one")
                seen[value] = i

    def _members_once(self) -> None:
        """A person (under any of their ids) listed twice in one team for overlapping periods."""
        canonical = {f"github:{i.github}": f"jira:{i.jira}" for i in self.identities}
        for ti, t in enumerate(self.teams):
            seen: dict[str, list[tuple[int, Member]]] = {}
            for mi, m in enumerate(t.members):
                who = canonical.get(m.person, m.person)
                lo, hi = m.period()
                for oi, other in seen.get(who, []):
                    olo, ohi = other.period()
                    if lo < ohi and olo < hi:
                        same = "" if other.person == m.person else f" (as {other.person}, the same person)"
                        raise _KeyedError(f"teams.{ti}.members.{mi}.person",
                                          f"{m.person!r} is already a member of team {t.key!r} at teams.{ti}.members."
                                          f"{oi}{same} for an overlapping period: remove one, or give them "
                                          "valid_from/valid_to that do not overlap")
                seen.setdefault(who, []).append((mi, m))

    def calendar_table(self) -> dict[str, Calendar]:
        """Every calendar, with `default` always present."""
        return {"default": Calendar(), **self.calendars}


class _KeyedError(ValueError):
    def __init__(self, key: str, msg: str) -> None:
        super().__init__(msg)
        self.key = key


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith(("function-", "tagged-union")))


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Load flowlens.toml from `path`, else FLOWLENS_CONFIG, else ./flowlens.toml; none: the defaults."""
    if path is None:
        env = os.environ.get("FLOWLENS_CONFIG")
        if env:
            path = env
        elif Path("flowlens.toml").exists():
            path = "flowlens.toml"
        else:
            return Config()
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found (set --config or FLOWLENS_CONFIG to an existing file)") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a file (set --config or FLOWLENS_CONFIG to the path of "
                          "flowlens.toml)") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read: {e.strerror} (fix its permissions, or point --config or "
                          "FLOWLENS_CONFIG at a readable copy)") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}: line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 (TOML files are UTF-8: "
                          "save it as UTF-8, e.g. iconv -f latin1 -t utf-8)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e} (fix the syntax there; flowlens.example.toml shows "
                          "every key)") from None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "missing: every entry needs it (see flowlens.example.toml)"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key" + _did_you_mean(err["loc"]) + " (see flowlens.example.toml for the valid keys)"
        elif err["type"] == "value_error" and isinstance(err.get("ctx", {}).get("error"), _KeyedError):
            key = ".".join(k for k in (key, err["ctx"]["error"].key) if k)
        return _raise(p, key, msg, err.get("input"), err["type"])
    return cfg.model_copy(update={"path": str(p)})


def _fields_at(loc: tuple) -> list[str]:
    """The keys valid where `loc` points (a model's fields), following lists and tables of models."""

    def bare(tp: object) -> object:  # X | None -> X
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            return next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        return tp

    tp: object = Config
    for part in loc:
        tp = bare(tp)
        origin = typing.get_origin(tp)
        if origin in (list, tuple):
            tp = typing.get_args(tp)[0]  # part: the index
        elif origin is dict:
            tp = typing.get_args(tp)[1]  # part: the table's own key
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        else:
            return []
    tp = bare(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _did_you_mean(loc: tuple) -> str:
    """"; did you mean 'projects'?" for a near miss of a valid key, else ""."""
    *parent, name = loc
    close = difflib.get_close_matches(str(name), [f for f in _fields_at(tuple(parent)) if f != "path"], n=1,
                                      cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _raise(p: Path, key: str, msg: str, value: object, kind: str) -> Config:
    shown = "" if kind in ("extra_forbidden", "value_error", "missing") or isinstance(value, dict) else f" (got {value!r})"
    raise ConfigError(f"{p}: {key or '<top level>'}: {msg}{shown}".replace("\n", " "))
