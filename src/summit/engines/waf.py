"""The WAF tier: nginx with ModSecurity v3 and the OWASP Core Rule Set (CRS), like AWS WAF in front
of an application load balancer's targets.

HAProxy's ``web`` backend sends the dynamic requests to ``waf-1`` ... ``waf-N`` (photo and static
paths go to the CDN and never pass here); each is one nginx process on a loopback port of its own
that inspects the request, headers and body, with the CRS's anomaly scoring (``paranoia_level``,
``inbound_anomaly_threshold``), and proxies what passes to the app servers over keep-alive
connections. A blocked request gets a 403 (the HTML page, or the API's JSON error on ``/api/``)
naming its request id, and the transaction is written as one JSON line to
``logs/<name>-events.log`` with the ids of the rules that matched.

Everything nginx writes lives in the stage: its prefix, configuration, pid file and temporary
files under ``engines/<name>/``, its output in ``logs/<name>.log``; from ``/etc`` and ``/usr/share``
it only reads the module and the CRS's rules. The CRS's own ``crs-setup.conf`` is not used: the
settings are rendered from the blueprint here.

Rule exclusions (``EXCLUSIONS``) keep the app's legitimate traffic from being blocked, each narrow:
a path (and method), the arguments or headers it frees, and from which rule families. Free text
(captions, comments, bios, names, passwords, search words) is escaped on output and bound as a
parameter by the app, so SQL-, script- or shell-looking words there are content, not attacks.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, chown, owned_dir, tcp_open
from summit.engines.process import Command

MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"  # Debian's libnginx-mod-http-modsecurity
CRS_RULES = "/usr/share/modsecurity-crs/rules"  # Debian's modsecurity-crs (read only)
RUN_USER = "www-data"  # nginx's workers when the supervisor is root (the master keeps root to bind nothing else)
HEALTH_PATH = "/.summit-waf/health"  # answered by nginx itself, for HAProxy's checks
_BLOCKED = "/.summit-waf/blocked"  # internal locations of the 403 pages
BLOCK_STATUS = 418  # what the inspecting server answers a blocked request with (no app does)
MiB = 1024 * 1024
# a request id the client may choose (HAProxy keeps a sane one), as the app accepts it: anything
# else is replaced by nginx's own, so the pages and logs never carry what a client wrote
_REQUEST_ID = r"^[A-Za-z0-9._-]{1,64}$"
_FIRST_ID = 10_100  # ids of summit's own rules (the CRS uses 900000-999999; 1-99999 are the site's)

# the CRS's families of content rules: what free text is freed from
FREE_TEXT = ("attack-sqli", "attack-xss", "attack-rce", "attack-lfi", "attack-rfi", "attack-injection-php",
             "attack-injection-nodejs", "attack-generic")


def binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise EngineError("nginx is not installed: run `summit engines install` (Debian's nginx, "
                          "libnginx-mod-http-modsecurity and modsecurity-crs)")
    return found


def crs_rules() -> list[str]:
    """The CRS's rule files in the order they load (the optional per-application exclusion sets, 903.9xxx, left out)."""
    if not Path(MODULE).exists():
        raise EngineError(f"ModSecurity's nginx module is missing ({MODULE}): run `summit engines install` "
                          "(Debian's libnginx-mod-http-modsecurity)")
    files = sorted(f for f in glob.glob(f"{CRS_RULES}/*.conf") if not Path(f).name.startswith("REQUEST-903.9"))
    if not any(Path(f).name.startswith("REQUEST-949") for f in files):
        raise EngineError(f"the OWASP Core Rule Set is missing from {CRS_RULES}: run `summit engines install` "
                          "(Debian's modsecurity-crs)")
    return files


@dataclass(frozen=True)
class WafSettings:
    """What the blueprint decides for every WAF process of a stage."""

    paranoia_level: int = 1
    inbound_anomaly_threshold: int = 5
    # the largest body: the app's photo limit plus its envelope, and a margin so that the app, not
    # the WAF, refuses a photo just over its limit (with its own message)
    max_body_bytes: int = 20 * MiB + 2 * MiB
    # the largest body without a file (JSON, forms): above the app's 1 MiB, for the same reason
    max_body_no_files_bytes: int = 2 * MiB
    hosts: tuple[str, ...] = ("127.0.0.1", "[::1]")  # address-literal Host headers the stage is reached by


@dataclass(frozen=True)
class Exclusion:
    """One narrow exception: on requests to ``path`` (a regex on the path, no query) with a method in
    ``methods``, ``targets`` (``ARGS:caption``, ``REQUEST_COOKIES:summit_session``) are not
    inspected by the rules carrying ``tags`` (or with the ``ids``). ``why`` is said in the rule file."""

    why: str
    path: str
    methods: tuple[str, ...]
    targets: tuple[str, ...]
    tags: tuple[str, ...] = FREE_TEXT
    ids: tuple[int, ...] = ()


def _args(*names: str) -> tuple[str, ...]:
    """A form field or multipart part (``ARGS:name``) and the same key in a JSON body (``ARGS:json.name``)."""
    return tuple(target for name in names for target in (f"ARGS:{name}", f"ARGS:json.{name}"))


_POST = r"[0-9]+"  # a post's or comment's id in a path
EXCLUSIONS: tuple[Exclusion, ...] = (
    Exclusion("a caption is free text (quotes, <, SQL or shell words): the app escapes it and binds it",
              rf"^(?:/api/v1/posts(?:/{_POST})?|/posts|/p/{_POST}/edit)$", ("POST", "PATCH"), _args("caption")),
    Exclusion("a comment is free text", rf"^(?:/api/v1/posts/{_POST}/comments|/p/{_POST}/comments)$", ("POST",), _args("body")),
    Exclusion("a profile's name and bio are free text", r"^(?:/api/v1/me|/settings)$", ("POST", "PATCH"),
              _args("display_name", "bio")),
    Exclusion("a password is any characters: it is hashed, never shown or put in a query",
              r"^(?:/api/v1/(?:accounts|sessions|me/password|accounts/password-reset/confirm)|/signup|/login|/reset/confirm"
              r"|/settings/security/password)$", ("POST",),
              _args("password", "current_password", "new_password")),
    Exclusion("search words are free text, matched as words by the app's index, never as syntax",
              r"^(?:/api/v1/search|/search)$", ("GET", "HEAD"), ("ARGS:q",)),
)


class Waf(Engine):
    kind = "waf"
    ready_timeout = 30.0
    health_path = HEALTH_PATH  # what HAProxy's checks of this server ask for

    def __init__(self, name: str, port: int, upstreams: list[Engine], settings: WafSettings = WafSettings()):
        """``upstreams``: the app servers it proxies to (and starts after)."""
        super().__init__(name, f"WAF (ModSecurity + OWASP CRS, paranoia level {settings.paranoia_level})", port,
                         needs=tuple(u.name for u in upstreams))
        self.upstreams = upstreams
        self.settings = settings

    # ---- where its files are -------------------------------------------------------------------

    def home(self, layout: Layout) -> Path:
        return layout.engine_dir(self.name)

    def events_log(self, layout: Layout) -> Path:
        """The blocked (and scored) transactions, one JSON object a line."""
        return layout.data_dir / "logs" / f"{self.name}-events.log"

    def pid_file(self, layout: Layout) -> Path:
        return self.home(layout) / "nginx.pid"

    # ---- configuration -------------------------------------------------------------------------

    def inspect_socket(self, layout: Layout) -> Path:
        """Where the inspecting server listens (a unix socket: short paths only, so under /tmp when the stage's is long)."""
        path = self.home(layout) / "inspect.sock"
        if len(str(path)) > 100:
            path = Path(tempfile.gettempdir()) / f"summit-waf-{self.port}.sock"
        return path

    def render_nginx(self, layout: Layout, *, down: Iterable[str] = ()) -> str:
        """nginx.conf; the app servers named in ``down`` get no new request (``summit restart`` drains them).

        Two servers in one process: the inspecting one (ModSecurity on, a unix socket) proxies to the
        app servers and answers a blocked request with 418, which no app sends; the public one (on
        the port, ModSecurity off) proxies to it and turns that 418 into the 403 page. The page cannot
        come from the inspecting server itself: an ``error_page`` there would start a new transaction
        and the blocked one (with its rule ids) would never reach the event log."""
        home, s = self.home(layout), self.settings
        down = set(down)
        user = f"user {RUN_USER} {_group_of(RUN_USER)};\n" if os.geteuid() == 0 else ""
        upstream = "\n".join(f"        server {u.host}:{u.port} max_fails=1 fail_timeout=2s{' down' if u.name in down else ''};  # {u.name}"
                             for u in self.upstreams)
        blocked_html = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Request blocked</title></head>"
                        "<body><h1>Request blocked</h1><p>The web application firewall refused this request: something in it "
                        "looks like an attack. If it should have passed, tell us its request id: "
                        "<code>$summit_request_id</code></p></body></html>\\n")
        blocked_json = ('{"error": {"code": "forbidden", "message": "the web application firewall refused this request: something '
                        'in it looks like an attack; if it should have passed, report its request id", "field": null}, '
                        '"request_id": "$summit_request_id"}\\n')
        tmp = home / "tmp"
        inspect = self.inspect_socket(layout)
        page = """            internal;
            add_header X-Request-Id $summit_request_id always;
            add_header Cache-Control "no-store" always;"""
        return f"""# rendered by summit before each start: edit the blueprint, not this file
load_module {MODULE};
daemon off;
master_process on;
worker_processes 1;
pid {self.pid_file(layout)};
error_log stderr warn;
{user}
events {{
    worker_connections 4096;
}}

http {{
    access_log off;  # HAProxy logs every request, with the same id
    server_tokens off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    client_max_body_size {s.max_body_bytes};
    client_body_buffer_size 1m;
    client_header_timeout 10s;
    client_body_timeout 60s;
    keepalive_timeout 60s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;  # X-Forwarded-For and X-Request-Id pass on as HAProxy set them
    proxy_buffering off;  # answers stream on as they come
    proxy_connect_timeout 2s;
    proxy_send_timeout 60s;
    proxy_read_timeout 60s;

    map $http_x_request_id $summit_request_id {{
        "~{_REQUEST_ID}" $http_x_request_id;
        default $request_id;
    }}
    map $uri $summit_blocked_page {{
        "~^/api/" {_BLOCKED}.json;
        default {_BLOCKED}.html;
    }}

    upstream app {{
{upstream}
        keepalive 64;
        keepalive_timeout 20s;  # under the app server's 30 s: nginx closes an idle connection first
    }}
    # no keep-alive to the inspecting server: on a reload (`summit restart web-N`) the old worker
    # closes its idle connections, and a POST the public server had just sent on one got a reset
    # (502; a request that was sent is not sent twice). A unix-socket connect costs far less than
    # the inspection.
    upstream inspect {{
        server unix:{inspect};
    }}

    # the public server: HAProxy's checks, and the 403 pages of what the inspecting server blocked
    server {{
        listen {self.host}:{self.port} backlog=1024;

        location = {HEALTH_PATH} {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
        location / {{
            proxy_pass http://inspect;
            proxy_set_header X-Request-Id $summit_request_id;  # one id for the page, the event and the app
            proxy_set_header Host $http_host;  # (a proxy_set_header here hides the http block's)
            proxy_set_header Connection "";
            proxy_request_buffering off;  # the inspecting server buffers the body for ModSecurity
            proxy_intercept_errors on;  # only the codes with an error_page: 418, a block
            error_page {BLOCK_STATUS} =403 $summit_blocked_page;
        }}
        location = {_BLOCKED}.html {{
{page}
            default_type "text/html; charset=utf-8";
            return 403 '{blocked_html}';
        }}
        location = {_BLOCKED}.json {{
{page}
            default_type application/json;
            return 403 '{blocked_json}';
        }}
    }}

    # the inspecting server: ModSecurity and the CRS, then the app servers
    server {{
        listen unix:{inspect};
        set_real_ip_from unix:;
        real_ip_header X-Forwarded-For;  # the client HAProxy saw (its last entry), for the rules and the events

        modsecurity on;
        modsecurity_rules_file {home}/modsecurity/main.conf;
        modsecurity_transaction_id "$summit_request_id";

        location / {{
            proxy_pass http://app;
            proxy_next_upstream error timeout;  # to another app server; never a request that was sent and is not idempotent
            proxy_next_upstream_tries {max(1, len(self.upstreams))};
            proxy_request_buffering on;
        }}
    }}
}}
"""

    def render_modsecurity(self, layout: Layout) -> str:
        """ModSecurity's engine settings, then the CRS's setup, the exclusions and the rules."""
        home, s = self.home(layout), self.settings
        tmp = home / "tmp" / "modsecurity"
        includes = "\n".join(f"Include {path}" for path in [
            home / "modsecurity" / "crs-setup.conf", home / "modsecurity" / "exclusions.conf", *crs_rules()])
        return f"""# rendered by summit before each start: edit the blueprint, not this file
SecRuleEngine On
SecRequestBodyAccess On
SecResponseBodyAccess Off
SecRequestBodyLimit {s.max_body_bytes}
SecRequestBodyNoFilesLimit {s.max_body_no_files_bytes}
SecRequestBodyLimitAction Reject
SecRequestBodyJsonDepthLimit 512
SecArgumentsLimit 1000
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
SecTmpDir {tmp}
SecDataDir {tmp}
SecArgumentSeparator &
SecCookieFormat 0

# bodies: JSON parsed as JSON (its keys become ARGS:json.<key>); a body that does not parse, a
# multipart body that breaks the rules or too many arguments are refused, not passed uninspected
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/(?:[a-z0-9.+-]+\\+)?json" \\
    "id:{_FIRST_ID},phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule &ARGS "@ge 1000" \\
    "id:{_FIRST_ID + 1},phase:2,t:none,log,deny,status:400,msg:'Failed to fully parse request body due to large argument count',severity:2"
SecRule REQBODY_ERROR "!@eq 0" \\
    "id:{_FIRST_ID + 2},phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body',logdata:'%{{reqbody_error_msg}}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \\
    "id:{_FIRST_ID + 3},phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation',severity:2"
SecRule MULTIPART_UNMATCHED_BOUNDARY "@eq 1" \\
    "id:{_FIRST_ID + 4},phase:2,t:none,log,deny,status:400,msg:'Multipart parser detected a possible unmatched boundary',severity:2"

# events: every transaction a rule matched, one JSON object a line (headers left out: they carry tokens)
SecAuditEngine RelevantOnly
SecAuditLogRelevantStatus "^$"
SecAuditLogParts AHZ
SecAuditLogType Serial
SecAuditLogFormat JSON
SecAuditLog {self.events_log(layout)}

{includes}

# a block answers {BLOCK_STATUS} to the public server, which sends the 403 page (the CRS says no status: 403)
SecRuleUpdateActionById 949110 "deny,status:{BLOCK_STATUS}"
SecRuleUpdateActionById 959100 "deny,status:{BLOCK_STATUS}"
"""

    def render_crs_setup(self) -> str:
        s = self.settings
        return f"""# rendered by summit before each start: the OWASP CRS's settings, from the blueprint (engines.waf)
SecDefaultAction "phase:1,log,auditlog,pass"
SecDefaultAction "phase:2,log,auditlog,pass"
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={s.paranoia_level}"
SecAction "id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold={s.inbound_anomaly_threshold},setvar:tx.outbound_anomaly_score_threshold=4"
SecAction "id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334"
"""

    def render_exclusions(self) -> str:
        """summit's exclusions, before the CRS: each a phase-1 rule that frees named targets for one request."""
        lines = ["# rendered by summit before each start: the app's legitimate traffic, freed narrowly (see docs/waf.md)", ""]
        rule = _FIRST_ID + 10
        hosts = "|".join(re.escape(h) for h in self.settings.hosts)
        lines += [
            "# the API's methods (PUT, PATCH, DELETE) on the API's paths only; elsewhere the CRS's default (GET HEAD POST OPTIONS)",
            f'SecRule REQUEST_FILENAME "@beginsWith /api/" "id:{rule},phase:1,pass,nolog,t:none,'
            "setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PUT PATCH DELETE'\"",
            "",
            "# the stage is reached by its loopback address: a numeric Host header is the stage's own, not a scanner's (920350)",
            f'SecRule REQUEST_HEADERS:Host "@rx ^(?:{hosts})(?::[0-9]+)?$" "id:{rule + 1},phase:1,pass,nolog,t:none,'
            'ctl:ruleRemoveById=920350"',
            "",
        ]
        rule += 10
        for exclusion in EXCLUSIONS:
            actions = [f"ctl:ruleRemoveTargetByTag={tag};{target}" for target in exclusion.targets for tag in exclusion.tags]
            actions += [f"ctl:ruleRemoveTargetById={rid};{target}" for target in exclusion.targets for rid in exclusion.ids]
            methods = "|".join(exclusion.methods)
            lines += [
                f"# {exclusion.why}",
                f'SecRule REQUEST_FILENAME "@rx {exclusion.path}" "id:{rule},phase:1,pass,nolog,t:none,chain"',
                f'    SecRule REQUEST_METHOD "@rx ^(?:{methods})$" "t:none,{",".join(actions)}"',
                "",
            ]
            rule += 1
        return "\n".join(lines)

    # ---- the unit ------------------------------------------------------------------------------

    def prepare(self, layout: Layout) -> None:
        user = RUN_USER if os.geteuid() == 0 else None
        if user:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise EngineError(f"running as root, nginx's workers run as {user!r}, which does not exist: "
                                  "install the engines with `summit engines install` (Debian's nginx creates it)") from None
        home = owned_dir(self.home(layout), user)
        rules = home / "modsecurity"
        rules.mkdir(exist_ok=True)
        for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "modsecurity"):
            owned_dir(home / "tmp" / part, user)
        (rules / "main.conf").write_text(self.render_modsecurity(layout))
        (rules / "crs-setup.conf").write_text(self.render_crs_setup())
        (rules / "exclusions.conf").write_text(self.render_exclusions())
        (home / "nginx.conf").write_text(self.render_nginx(layout))
        events = self.events_log(layout)
        events.parent.mkdir(parents=True, exist_ok=True)
        events.touch(mode=0o640, exist_ok=True)
        chown(events, user)
        self.pid_file(layout).unlink(missing_ok=True)
        # a process that was killed (SIGKILL) leaves its unix socket behind, and nginx cannot bind a
        # socket file that exists ("Address already in use"): the supervisor could never restart it
        self.inspect_socket(layout).unlink(missing_ok=True)

    def command(self, layout: Layout) -> Command:
        home = self.home(layout)
        # -e: the error log before the configuration is read (else /var/log/nginx/error.log)
        argv = [binary(), "-p", str(home), "-c", str(home / "nginx.conf"), "-e", "stderr"]
        return Command(argv, stop_signal=signal.SIGQUIT, grace=15.0)  # SIGQUIT: finish what is in flight, then exit

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        try:
            with urllib.request.urlopen(f"http://{self.address}{HEALTH_PATH}", timeout=2) as response:  # noqa: S310 (loopback)
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

def _group_of(user: str) -> str:
    import grp

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def workers(master_pid: int) -> set[int]:
    """The nginx master's child processes now."""
    try:
        return {int(pid) for pid in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()}
    except OSError:
        return set()


def set_down(layout: Layout, waf: str, app_server: str, down: bool, master_pid: int, timeout: float = 30.0) -> bool:
    """Mark ``app_server`` down (or up again) in the running WAF process ``waf`` and reload it: with
    it down, new requests go to the other app servers and the old workers finish what they have in
    flight first (``summit restart`` drains an app server so). True once those old workers are gone.
    The next start renders the configuration afresh, every app server up."""
    conf = layout.engine_dir(waf) / "nginx.conf"
    line = re.compile(rf"^(\s*server \S+ max_fails=\S+ fail_timeout=\S+?)(?: down)?;(\s*# {re.escape(app_server)})$", re.M)
    text, found = line.subn(lambda m: f"{m.group(1)}{' down' if down else ''};{m.group(2)}", conf.read_text())
    if found != 1:
        raise EngineError(f"{waf} does not proxy to {app_server} (no such upstream server in {conf})")
    conf.write_text(text)
    return reload(master_pid, timeout)


def reload(master_pid: int, timeout: float = 30.0) -> bool:
    """SIGHUP the nginx master (it re-reads its configuration, starts new workers and lets the old
    ones finish their requests); True once every old worker has exited within ``timeout``."""
    old = workers(master_pid)
    os.kill(master_pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not old & workers(master_pid):
            return True
        time.sleep(0.05)
    return False
