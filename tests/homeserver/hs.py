#!/usr/bin/python3
"""hs.py - a small stand-in Matrix homeserver for backupbot's tests.

Every client request is checked against the Matrix spec (OpenAPI + JSON
schemas read from --spec DIR, default $MATRIX_SPEC_DIR or shared/matrix-spec
beside the checkout or beside the one it was cloned from).  Any
mismatch is answered like a real server would (400/404/405 with a Matrix
error) AND appended to a violations list that tests fetch and fail on.

    hs.py --port PORT [--host 127.0.0.1] [--spec DIR] [--log FILE]
          [--server-name localhost] [--self-check]

Prints "READY <port>" on stdout once listening (--port 0 picks a free port).
--log FILE: one JSON line per client request (method, full path with query,
headers and body exactly as received, Authorization included).
--self-check: also validate our own responses against the spec's response
schemas (failures are recorded as violations of kind "self-check").

Control API (no auth, JSON in/out; user ids may be given as bare localparts):
  GET  /_test/health                      -> 200 {"ok": true}
  POST /_test/users   {user_id, password?, access_token?, device_id?}
                                          -> {user_id, access_token, device_id}
  POST /_test/rooms   {room_id?, alias?, creator, members:[], invited:[],
                       power_levels?:{users, users_default, ...}, encrypted?,
                       public?, name?, room_version?=10|11|12,
                       additional_creators?:[], no_power_levels?}  -> {room_id}
                       (version 12: room id without server part, creators
                       have infinite power and are not in power_levels)
  POST /_test/rooms/{roomId}/invite {sender, user_id}          -> {event_id}
  POST /_test/rooms/{roomId}/send   {sender, type?="m.room.message", content,
                       state_key?, origin_server_ts?}          -> {event_id}
  GET  /_test/events?room_id=R[&sender=S][&type=T][&since=N]
        -> {events:[{pos, event, txn_id, device_id, raw_body, source}], last}
  POST /_test/wait    {room_id, sender, count, timeout_ms, type?, since?}
        -> 200 {timeout:false, events} or 408 {timeout:true, events}
  POST /_test/faults  {kind, count?=1, path_regex?, ...}  kinds:
        "429" {mode: header|body|both|date (default both), retry_after_ms?=1000}
                                 (date: Retry-After as an HTTP date, no body field)
        "500" | "502" | "503" {body?}     error answer (502/503 as proxy HTML)
        "drop" {after?: false}   close the connection without answering
                                 (after=true: process the request first)
        "slow" {delay_ms}        delay, then answer normally
        "outage" {duration_ms}   drop every client request from now on for
                                 duration_ms
        "forget_txns"            forget txnId memory (applied immediately)
        "unknown_token" {soft_logout?, invalidate?}  401 M_UNKNOWN_TOKEN
  POST /_test/limit   {room_id, limit?=1}  next sync containing the room gets
                                 a limited timeline (last `limit` events)
  POST /_test/replay  {count, user_id?}    next /sync re-sends the last
                                 `count` events before its `since`
  POST /_test/raw_sync {body, status?=200} next /sync answers this raw text
  POST /_test/reset_faults                 clear faults and one-shot hooks
  GET  /_test/violations  -> {violations:[...], warnings:[...]}
  POST /_test/reset_violations             clear violations and warnings
  GET  /_test/requests    -> {requests:[{method, path, time, status, fault}]}
  POST /_test/config {sync_cache?, rate_limit?, txn_ttl_ms?, token_lifetime_ms?,
                      login?: password|sso, self_check?}   what a real server does, all on
        by default: identical /sync requests answered from a 2-minute cache
        (key: user, device, filter, since, timeout, full_state; empty answers
        are not cached), rc_message 0.2/s burst 10 on sends and redactions,
        txn ids kept 24 h per device; token_lifetime_ms (default off) makes
        tokens from a login with refresh_token:true expire (soft_logout) and
        /refresh work; login=sso offers only SSO.  Identical filters keep
        their id, as in Synapse.
  POST /_test/faults {kind: "empty_pages", count}  the next /messages pages
        answer an empty chunk with an `end` (events the user may not see)
  POST /_test/faults {kind: "stale_sync", count}  the next /syncs with a since
        answer at once {next_batch: since} (no progress; fault "stale_sync")
  POST /_test/expire_tokens {user_id}      the user's tokens expire now
  POST /_test/rooms/{roomId}/redact {sender, event_id, reason?}
  POST /_test/kick {room_id, sender, user_id, membership?=leave|ban, reason?}
  POST /_test/rooms/{roomId}/upgrade {sender, room_version?=12, public?}
        -> {replacement_room}   a room upgrade as Synapse makes it
  GET  /_test/e2ee?user_id=U -> {devices: {device: keys}, one_time_keys:
                       {device: count}, to_device: {device: pending count}}

End-to-end encryption (the E2EE handlers, h_keys_* and h_send_to_device):
device keys, one-time and fallback keys, key claims, to-device messages,
and in /sync: to_device, device_lists, device_one_time_keys_count and
device_unused_fallback_key_types.  Their position is an "e2ee stream"
counter; once it is in use, next_batch tokens carry it as 's42.7' (room
stream 42, e2ee stream 7).  Uploaded device keys and one-time keys must
carry a valid ed25519 self-signature (checked with python3-olm).
"""

import argparse
import base64
import email.utils
import glob
import hashlib
import bisect
import json
import math
import os
import re
import secrets
import string
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import yaml

try:
    import olm as pyolm          # python3-olm: checks uploaded signatures
except ImportError:              # pragma: no cover
    pyolm = None

HTTP_METHODS = ('get', 'put', 'post', 'delete', 'patch', 'head', 'options')
V1 = '/_matrix/client/v1'
V3 = '/_matrix/client/v3'
MAX_PDU_SIZE = 65536          # bytes of canonical JSON, as Synapse enforces
DEFAULT_TIMELINE_LIMIT = 10
SPEC_VERSIONS = ['v1.%d' % i for i in range(1, 20)]


def now_ms():
    return int(time.time() * 1000)


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':'),
                      ensure_ascii=False).encode('utf-8')


class MatrixError(Exception):
    """Raised by handlers; becomes a {errcode, error} answer."""

    def __init__(self, status, errcode, error, **extra):
        super().__init__(error)
        self.status, self.errcode, self.error, self.extra = status, errcode, error, extra


class Reply:
    """An HTTP answer: JSON object (or raw bytes) + status + extra headers."""

    def __init__(self, status=200, body=None, raw=None, headers=None,
                 content_type='application/json'):
        self.status, self.body, self.headers = status, body, headers or {}
        self.raw = raw if raw is not None else json.dumps(body).encode()
        self.content_type = content_type


def error_reply(status, errcode, error, **extra):
    return Reply(status, dict({'errcode': errcode, 'error': error}, **extra))


# --------------------------------------------------------------------------
# Spec loading: YAML files, $ref inlining, the router built from the paths.
# --------------------------------------------------------------------------

class SpecLoader:
    """Loads spec YAML files and inlines $refs (relative to the referring file)."""

    def __init__(self):
        self._files = {}
        self.missing = set()    # referenced files absent from the spec copy

    def load(self, path):
        path = os.path.normpath(path)
        if path not in self._files:
            with open(path, encoding='utf-8') as f:
                self._files[path] = yaml.safe_load(f)
        return self._files[path]

    def resolve(self, node, base_file, _stack=()):
        """Deep copy of `node` with every $ref replaced by its target.

        "file.yaml#/a/b" loads file.yaml relative to base_file; "#/a/b" points
        into base_file itself.  Sibling keys next to a $ref are kept through
        an allOf.  $schema/$id of inlined documents are dropped, so that the
        result is one self-contained JSON schema."""
        if isinstance(node, list):
            return [self.resolve(x, base_file, _stack) for x in node]
        if not isinstance(node, dict):
            return node
        if '$ref' in node:
            file_part, _, pointer = node['$ref'].partition('#')
            target_file = (os.path.normpath(os.path.join(os.path.dirname(base_file), file_part))
                           if file_part else base_file)
            key = (target_file, pointer)
            if key in _stack:           # recursive schema: accept anything below
                return {}
            if not os.path.isfile(target_file):
                # e.g. the identity-service API is not part of the shared copy;
                # only 3PID endpoints refer to it.  Accept anything there.
                self.missing.add(target_file)
                return {}
            target = self.load(target_file)
            for part in (p for p in pointer.split('/') if p):
                target = target[part.replace('~1', '/').replace('~0', '~')]
            resolved = self.resolve(target, target_file, _stack + (key,))
            siblings = {k: v for k, v in node.items() if k != '$ref'}
            if siblings:
                return {'allOf': [resolved, self.resolve(siblings, base_file, _stack)]}
            return resolved
        return {k: self.resolve(v, base_file, _stack)
                for k, v in node.items() if k not in ('$schema', '$id')}


_validators = {}


def schema_error(schema, instance):
    """First validation error message for instance against schema, or None.
    (Formats such as mx-user-id are not checked; their `pattern`s are.)"""
    validator = _validators.get(id(schema))
    if validator is None or validator.schema is not schema:
        validator = _validators[id(schema)] = jsonschema.Draft202012Validator(schema)
    err = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if err is None:
        return None
    where = '/'.join(str(p) for p in err.absolute_path)
    return '%s%s' % ('at %s: ' % where if where else '', err.message[:300])


def coerce_param(values, schema):
    """Turn query/path strings into the JSON type the parameter schema wants."""
    kind = schema.get('type')
    if kind == 'array':
        return [coerce_param([v], schema.get('items', {})) for v in values]
    value = values[-1]
    if kind == 'integer':
        if not re.fullmatch(r'-?\d+', value):
            raise ValueError('not an integer: %r' % value)
        return int(value)
    if kind == 'number':
        return float(value)
    if kind == 'boolean':
        if value not in ('true', 'false'):
            raise ValueError('not a boolean (true/false): %r' % value)
        return value == 'true'
    return value


@dataclass
class Problem:
    status: int
    errcode: str
    message: str
    kind: str


def loose_one_of(schema):
    """A response `oneOf` with a bare {"type": "object"} branch (GET .../state
    with ?format=event: content or the whole event) can never accept the
    other branches, which are objects too: the spec means anyOf."""
    if isinstance(schema, dict) and {'type': 'object'} in schema.get('oneOf', []):
        schema = dict(schema, anyOf=schema['oneOf'])
        del schema['oneOf']
    return schema


class Operation:
    """One HTTP method on one path template, as declared by the spec."""

    def __init__(self, loader, source, template, method, op):
        self.source, self.template, self.method = source, template, method
        self.segments = template.split('/')
        self.literals = sum(1 for s in self.segments if not s.startswith('{'))
        op = loader.resolve(op, source)
        self.auth = bool(op.get('security')) and {} not in op['security']
        self.auth_optional = {} in op.get('security', [])
        self.params = op.get('parameters', [])
        body = op.get('requestBody')
        self.body_schema = body and body.get('content', {}).get('application/json', {}).get('schema')
        self.body_required = bool(body and body.get('required'))
        self.responses = {}
        for status, resp in op.get('responses', {}).items():
            schema = (resp or {}).get('content', {}).get('application/json', {}).get('schema')
            if schema is not None:
                self.responses[int(status)] = loose_one_of(schema)
        self.alternatives = []      # same method+path declared again in another file

    def match(self, segments):
        """Path parameters if the raw path segments fit this template, else None."""
        if len(segments) != len(self.segments):
            return None
        params = {}
        for tmpl, seg in zip(self.segments, segments):
            if tmpl.startswith('{') and tmpl.endswith('}'):
                params[tmpl[1:-1]] = urllib.parse.unquote(seg)
            elif tmpl != seg:
                return None
        return params

    def check(self, path_params, query, body_raw):
        """Validate a request; returns (problems, parsed JSON body or None)."""
        problems, doc = self._check(path_params, query, body_raw)
        for alt in self.alternatives:
            if not problems:
                break
            alt_problems, alt_doc = alt._check(path_params, query, body_raw)
            if not alt_problems:
                problems, doc = [], alt_doc
        return problems, doc

    def _check(self, path_params, query, body_raw):
        problems, doc = [], None
        for p in self.params:
            name, where, schema = p['name'], p['in'], p.get('schema', {})
            if where == 'path':
                values = [path_params[name]] if name in path_params else None
            elif where == 'query':
                values = query.get(name)
            else:
                continue
            if not values:
                if p.get('required'):
                    problems.append(Problem(400, 'M_MISSING_PARAM',
                                            'Missing %s parameter %r' % (where, name), 'missing-param'))
                continue
            try:
                value = coerce_param(values, schema)
                err = schema_error(schema, value)
            except ValueError as e:
                err = str(e)
            if err:
                problems.append(Problem(400, 'M_INVALID_PARAM',
                                        'Invalid %s parameter %r: %s' % (where, name, err), 'invalid-param'))
        if self.body_schema is not None:
            if not body_raw.strip():
                if self.body_required:
                    problems.append(Problem(400, 'M_NOT_JSON', 'Request body required (JSON)', 'not-json'))
            else:
                try:
                    doc = json.loads(body_raw)
                except ValueError as e:
                    problems.append(Problem(400, 'M_NOT_JSON', 'Content not JSON: %s' % e, 'not-json'))
                else:
                    err = schema_error(self.body_schema, doc)
                    if err:
                        problems.append(Problem(400, 'M_BAD_JSON', 'Invalid request body: %s' % err, 'bad-json'))
        return problems, doc


class SpecMissing(Exception):
    pass


class Spec:
    """The client-server API (router) and the event schemas of the Matrix spec."""

    def __init__(self, spec_dir):
        data = os.path.join(spec_dir, 'data')
        if not os.path.isdir(os.path.join(data, 'api')) and os.path.isdir(os.path.join(spec_dir, 'api')):
            data = spec_dir
        self.api_dir = os.path.join(data, 'api', 'client-server')
        self.events_dir = os.path.join(data, 'event-schemas', 'schema')
        if not os.path.isdir(self.api_dir) or not os.path.isdir(self.events_dir):
            raise SpecMissing(spec_dir)
        self.loader = SpecLoader()
        self.ops = {}
        for fn in sorted(glob.glob(os.path.join(self.api_dir, '*.yaml'))):
            doc = self.loader.load(fn)
            # Each file's paths are relative to its server's basePath.
            base = doc['servers'][0]['variables']['basePath']['default']
            for raw_path, item in doc.get('paths', {}).items():
                template = base + raw_path.strip()    # a few keys carry a stray space
                for method, op in item.items():
                    if method not in HTTP_METHODS:
                        continue
                    operation = Operation(self.loader, fn, template, method.upper(), op)
                    key = (operation.method, template)
                    if key in self.ops:
                        self.ops[key].alternatives.append(operation)
                    else:
                        self.ops[key] = operation
        # "When [stateKey is] an empty string, the trailing slash on this
        # endpoint is optional" (rooms.yaml, room_state.yaml).
        for method in ('GET', 'PUT'):
            op = self.ops[(method, V3 + '/rooms/{roomId}/state/{eventType}/{stateKey}')]
            alias = Operation.__new__(Operation)
            alias.__dict__.update(op.__dict__)
            alias.template = V3 + '/rooms/{roomId}/state/{eventType}'
            alias.segments = alias.template.split('/')
            self.ops[(method, alias.template)] = alias
        self.by_specificity = sorted(self.ops.values(), key=lambda o: -o.literals)
        self.filter_schema = self.definition('sync_filter.yaml')
        self.room_event_filter_schema = self.definition('room_event_filter.yaml')
        self.relates_to_schema = self.definition('m.relates_to.yaml')
        self.mentions_schema = self.definition('m.mentions.yaml')
        self._event_schemas = {}

    def definition(self, name):
        path = os.path.join(self.api_dir, 'definitions', name)
        return self.loader.resolve(self.loader.load(path), path)

    def route(self, method, path):
        """(operation, path params) | (None, 'method') | (None, None)."""
        segments = path.split('/')
        wrong_method = False
        for op in self.by_specificity:
            params = op.match(segments)
            if params is None:
                continue
            if op.method == method:
                return op, params
            wrong_method = True
        return None, ('method' if wrong_method else None)

    def event_schema(self, event_type, msgtype=None):
        """Schema for a full room event of this type (msgtype-specific for messages)."""
        safe = re.compile(r'[A-Za-z0-9._-]+')    # never build odd paths from client input
        names = []
        if event_type == 'm.room.message' and isinstance(msgtype, str) and safe.fullmatch(msgtype):
            names.append('m.room.message$%s.yaml' % msgtype)
        if safe.fullmatch(event_type):
            names.append('%s.yaml' % event_type)
        names.append(os.path.join('core-event-schema', 'room_event.yaml'))
        for name in names:
            path = os.path.join(self.events_dir, name)
            if os.path.isfile(path):
                if path not in self._event_schemas:
                    self._event_schemas[path] = self.loader.resolve(self.loader.load(path), path)
                return name, self._event_schemas[path]
        raise AssertionError('core-event-schema/room_event.yaml missing')


# --------------------------------------------------------------------------
# Server state
# --------------------------------------------------------------------------

@dataclass
class Rec:
    """One stored room event and how it got here."""
    pos: int                  # global stream position (1, 2, ...)
    event: dict               # ClientEvent (with room_id) as stored
    received_ms: int          # server receive time (for unsigned.age)
    source: str               # 'api' (a client sent it) or 'test' (injected)
    txn_id: str = None
    device_id: str = None
    raw_body: str = None
    prev: 'Rec' = None        # state event this one replaced
    redacted_by: 'Rec' = None  # the m.room.redaction that stripped it


class Room:
    def __init__(self, room_id):
        self.room_id = room_id
        self.events = []      # Rec, in stream order
        self.state = {}       # (type, state_key) -> Rec

    def membership(self, user_id):
        rec = self.state.get(('m.room.member', user_id))
        return rec.event['content'].get('membership') if rec else None

    def members(self, membership='join'):
        return [key for (etype, key), rec in self.state.items()
                if etype == 'm.room.member' and rec.event['content'].get('membership') == membership]

    def power_level(self, user_id):
        create = self.state.get(('m.room.create', ''))
        cc = create.event['content'] if create else {}
        creators = [create.event['sender']] + cc.get('additional_creators', []) if create else []
        if cc.get('room_version') == '12' and user_id in creators:
            return math.inf                 # room version 12: creators
        pl = self.state.get(('m.room.power_levels', ''))
        if pl is None:                      # no power levels: the creator has 100
            return 100 if user_id in creators[:1] else 0
        content = pl.event['content']
        return content.get('users', {}).get(user_id, content.get('users_default', 0))

    def required_level(self, event_type, is_state):
        pl = self.state.get(('m.room.power_levels', ''))
        content = pl.event['content'] if pl else {}
        default = content.get('state_default', 50) if is_state else content.get('events_default', 0)
        return content.get('events', {}).get(event_type, default)


def glob_match(pattern, value):
    """Filter type/sender matching: '*' matches any sequence of characters."""
    return re.fullmatch('.*'.join(map(re.escape, pattern.split('*'))), value) is not None


def event_passes(f, event):
    """Apply an EventFilter/RoomEventFilter (types, senders, contains_url)."""
    if not f:
        return True
    if any(glob_match(p, event['type']) for p in f.get('not_types', [])):
        return False
    if 'types' in f and not any(glob_match(p, event['type']) for p in f['types']):
        return False
    if event['sender'] in f.get('not_senders', []):
        return False
    if 'senders' in f and event['sender'] not in f['senders']:
        return False
    if 'contains_url' in f and ('url' in event['content']) != f['contains_url']:
        return False
    return True


def room_passes(f, room_id):
    if room_id in (f or {}).get('not_rooms', []):
        return False
    return 'rooms' not in (f or {}) or room_id in f['rooms']


def parse_token(token, kinds='st'):
    """Stream position from an opaque token: 's42' (sync) / 't41' (pagination)."""
    m = re.fullmatch(r'([a-z])(\d+)', token or '')
    if not m or m.group(1) not in kinds:
        raise MatrixError(400, 'M_INVALID_PARAM', 'Unknown or malformed token %r' % token)
    return int(m.group(2))


class Homeserver:
    """All server state; every access happens under self.lock (see dispatch)."""

    def __init__(self, spec, server_name, log_path=None, self_check=False):
        self.spec, self.server_name, self.self_check = spec, server_name, self_check
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)     # notified on every new event
        self.log_file = open(log_path, 'a', encoding='utf-8') if log_path else None
        self.log_lock = threading.Lock()
        self.users = {}          # user_id -> {'password': str}
        self.tokens = {}         # access token -> (user_id, device_id)
        self.rooms = {}          # room_id -> Room
        self.aliases = {}        # '#alias:server' -> room_id
        self.stream = []         # every Rec; stream[i].pos == i + 1
        self.filters = {}        # user_id -> [filter, ...] (filter_id = index)
        self.txns = {}           # (user, device, path) -> (event_id, raw body)
        self.faults = []         # queued faults (dicts with a 'left' count)
        self.outage_until = 0.0
        self.forced_limits = {}  # room_id -> timeline limit for the next sync
        self.replay = None       # {'count', 'user_id'} for the next sync
        self.raw_sync = None     # {'body', 'status'} for the next sync
        self.violations, self.warnings, self.requests = [], [], []
        self.base_url = None
        self.init_realism()
        self.e2ee_init()

    # ----- bookkeeping -------------------------------------------------------

    def violation(self, kind, req, message):
        entry = {'kind': kind, 'method': req.method, 'path': req.path, 'message': message}
        self.violations.append(entry)
        print('hs.py: VIOLATION %s' % json.dumps(entry), file=sys.stderr, flush=True)

    def warning(self, req, message):
        self.warnings.append({'method': req.method, 'path': req.path, 'message': message})

    def log_request(self, handler, body):
        if not self.log_file:
            return
        line = json.dumps({'time': now_ms(), 'method': handler.command, 'path': handler.path,
                           'headers': [[k, v] for k, v in handler.headers.items()],
                           'body': body.decode('utf-8', 'backslashreplace')}, ensure_ascii=False)
        with self.log_lock:
            self.log_file.write(line + '\n')
            self.log_file.flush()

    def new_event_id(self):
        return '$' + base64.urlsafe_b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).decode().rstrip('=')

    def user_id(self, name):
        """'@bot:localhost' from 'bot' or '@bot:localhost'."""
        if not isinstance(name, str) or not name:
            raise MatrixError(400, 'M_INVALID_PARAM', 'missing user id')
        return name if name.startswith('@') else '@%s:%s' % (name, self.server_name)

    # ----- events --------------------------------------------------------------

    def build_event(self, room, sender, etype, content, state_key=None, ts=None):
        ev = {'event_id': self.new_event_id(), 'type': etype, 'sender': sender,
              'origin_server_ts': ts if ts is not None else now_ms(),
              'content': content, 'room_id': room.room_id}
        if state_key is not None:
            ev['state_key'] = state_key
        return ev

    def store(self, room, ev, source, txn_id=None, device_id=None, raw_body=None):
        rec = Rec(pos=len(self.stream) + 1, event=ev, received_ms=now_ms(), source=source,
                  txn_id=txn_id, device_id=device_id, raw_body=raw_body)
        if 'state_key' in ev:
            key = (ev['type'], ev['state_key'])
            rec.prev = room.state.get(key)
            room.state[key] = rec
        self.stream.append(rec)
        room.events.append(rec)
        self.cond.notify_all()          # wake long-polling /sync and /_test/wait
        return rec

    def inject(self, room, sender, etype, content, state_key=None, ts=None, source='test'):
        rec = self.store(room, self.build_event(room, sender, etype, content, state_key, ts), source)
        if ts is not None:       # an event said to be sent then: its age agrees
            rec.received_ms = min(rec.received_ms, ts)
        return rec

    def client_event(self, rec, viewer=None, device=None, with_room_id=True):
        """The event as a client sees it (ClientEvent / ClientEventWithoutRoomID)."""
        ev = dict(rec.event)
        if not with_room_id:
            del ev['room_id']
        unsigned = {'age': max(0, now_ms() - rec.received_ms)}
        if rec.prev is not None:
            unsigned['prev_content'] = rec.prev.event['content']
            unsigned['replaces_state'] = rec.prev.event['event_id']
        if rec.txn_id is not None and viewer == ev['sender'] and device == rec.device_id:
            unsigned['transaction_id'] = rec.txn_id
        if rec.redacted_by is not None:
            unsigned['redacted_because'] = self.client_event(rec.redacted_by, viewer, device)
        ev['unsigned'] = unsigned
        return ev

    def pdu_size(self, room, ev):
        """Canonical-JSON size of the federation PDU a real server would build
        for `ev` (content, event_id, sender, type, room_id, timestamps plus
        auth/prev events, depth, hashes and signatures)."""
        fake_id = '$' + 'A' * 43
        pdu = dict(ev, auth_events=[fake_id] * 3, prev_events=[fake_id], depth=len(room.events) + 1,
                   hashes={'sha256': 'A' * 43},
                   signatures={self.server_name: {'ed25519:a_AAAA': 'A' * 86}},
                   unsigned={'age_ts': ev['origin_server_ts']})
        return len(canonical_json(pdu))

    def find_event(self, room, event_id):
        for rec in room.events:
            if rec.event['event_id'] == event_id:
                return rec
        return None

    def check_event_content(self, room, ev):
        """Validate a client-sent event against the spec's event schemas.
        Returns a list of problem strings (empty if fine)."""
        content = ev['content']
        name, schema = self.spec.event_schema(ev['type'], content.get('msgtype'))
        problems = []
        err = schema_error(schema, ev)
        if err:
            problems.append('%s does not match %s: %s' % (ev['type'], name, err))
        if 'm.mentions' in content:
            err = schema_error(self.spec.mentions_schema, content['m.mentions'])
            if err:
                problems.append('m.mentions: %s' % err)
        rel = content.get('m.relates_to')
        if rel is None:
            return problems
        if not isinstance(rel, dict):
            return problems + ['m.relates_to must be an object']
        if 'rel_type' in rel:
            err = schema_error(self.spec.relates_to_schema, rel)
            if err:
                problems.append('m.relates_to (definitions/m.relates_to.yaml): %s' % err)
        # The following relation details are only described in the spec's
        # prose (no schema file exists for them in the data directory).
        reply = rel.get('m.in_reply_to')
        if reply is not None and not (isinstance(reply, dict) and isinstance(reply.get('event_id'), str)
                                      and reply['event_id'].startswith('$')):
            problems.append('m.relates_to.m.in_reply_to must be {"event_id": "$..."}')
        rel_type = rel.get('rel_type')
        if rel_type == 'm.thread' and not isinstance(rel.get('is_falling_back', False), bool):
            problems.append('m.relates_to.is_falling_back must be a boolean')
        if rel_type == 'm.annotation' and not isinstance(rel.get('key'), str):
            problems.append('m.annotation relation needs a string "key"')
        # An encrypted edit carries m.new_content inside its ciphertext.
        if rel_type == 'm.replace' and ev['type'] != 'm.room.encrypted':
            new = content.get('m.new_content')
            if not isinstance(new, dict):
                problems.append('m.replace edit needs an "m.new_content" object')
            else:
                name, schema = self.spec.event_schema(ev['type'], new.get('msgtype'))
                err = schema_error(schema, dict(ev, content=new))
                if err:
                    problems.append('m.new_content does not match %s: %s' % (name, err))
        return problems

    def check_relation_target(self, room, ev):
        """Semantic relation checks a real server (Synapse) makes at send time."""
        rel = ev['content'].get('m.relates_to')
        if not isinstance(rel, dict) or 'rel_type' not in rel:
            return
        parent = self.find_event(room, rel.get('event_id'))
        if parent is None:
            raise MatrixError(400, 'M_UNKNOWN', "Can't send relation to unknown event")
        if rel['rel_type'] == 'm.annotation':
            for rec in room.events:
                other = rec.event['content'].get('m.relates_to')
                if (rec.event['sender'] == ev['sender'] and rec.event['type'] == ev['type']
                        and isinstance(other, dict) and other.get('rel_type') == 'm.annotation'
                        and other.get('event_id') == rel['event_id'] and other.get('key') == rel.get('key')):
                    raise MatrixError(400, 'M_DUPLICATE_ANNOTATION', "Can't send same reaction twice")
        if rel['rel_type'] == 'm.thread':
            prel = parent.event['content'].get('m.relates_to')
            if isinstance(prel, dict) and 'rel_type' in prel:
                raise MatrixError(400, 'M_UNKNOWN', 'Cannot start threads from an event with a relation')

    # ----- sync ------------------------------------------------------------------

    def stripped_state(self, room, invite_rec):
        keys = [('m.room.create', ''), ('m.room.join_rules', ''), ('m.room.name', ''),
                ('m.room.canonical_alias', ''), ('m.room.avatar', ''), ('m.room.topic', ''),
                ('m.room.encryption', ''), ('m.room.member', invite_rec.event['sender'])]
        recs = [room.state[k] for k in keys if k in room.state] + [invite_rec]
        return [{k: r.event[k] for k in ('type', 'state_key', 'content', 'sender')} for r in recs]

    @staticmethod
    def events_after(room, pos):
        """room.events from the first one after stream position pos: read
        from an index, as a real server does, not by filtering the whole
        room (which made every filtered /sync cost O(room) here)."""
        return room.events[bisect.bisect_right(room.events, pos, key=lambda r: r.pos):]

    def timeline(self, room, user, device, lo, hi, tfilter, limit, forced=None):
        """Timeline of events lo < pos <= hi (last `limit` after filtering)."""
        recs = [r for r in self.events_after(room, lo) if r.pos <= hi and event_passes(tfilter, r.event)]
        limited = len(recs) > limit
        if forced is not None:
            limit, limited = forced, True
        recs = recs[-limit:]
        prev_batch = 't%d' % (recs[0].pos - 1 if recs else hi)
        return recs, {'events': [self.client_event(r, user, device, with_room_id=False) for r in recs],
                      'limited': limited, 'prev_batch': prev_batch}

    def joined_room_entry(self, room, user, device, since, head, filt, full, used):
        """rooms.join.<roomId> for `user`, or None when nothing changed."""
        rfilter = filt.get('room', {})
        tfilter = rfilter.get('timeline', {})
        limit = max(1, min(int(tfilter.get('limit', DEFAULT_TIMELINE_LIMIT)), 1000))
        has_new = any(r.pos <= head and event_passes(tfilter, r.event)
                      for r in self.events_after(room, since or 0))
        forced = self.forced_limits.get(room.room_id) if has_new else None
        recs, timeline = self.timeline(room, user, device, since or 0, head, tfilter, limit, forced)
        if forced is not None:
            used.append(('limit', room.room_id))
        start = recs[0].pos if recs else head + 1
        # State up to the start of the timeline: all of it for a new/full
        # sync, otherwise only what changed in the gap since `since`.
        latest = {}
        for r in room.events if full or since is None else self.events_after(room, since):
            if 'state_key' in r.event and r.pos < start and (full or r.pos > since):
                latest[(r.event['type'], r.event['state_key'])] = r
        sfilter = rfilter.get('state', {})
        state = [self.client_event(r, user, device, with_room_id=False)
                 for r in latest.values() if event_passes(sfilter, r.event)]
        if since is not None and not full and not recs and not state:
            return None
        joined, invited = room.members('join'), room.members('invite')
        return {'timeline': timeline, 'state': {'events': state},
                'summary': {'m.heroes': [u for u in joined + invited if u != user][:5],
                            'm.joined_member_count': len(joined),
                            'm.invited_member_count': len(invited)},
                'ephemeral': {'events': []}, 'account_data': {'events': []},
                'unread_notifications': {'highlight_count': 0, 'notification_count': 0}}

    def sync_response(self, user, device, since, filt, full_state):
        """One /sync answer from `since` (None = initial) to the stream head.
        Returns (body, has_updates, one-shot hooks used)."""
        head, used = len(self.stream), []
        rfilter = filt.get('room', {})
        tfilter = rfilter.get('timeline', {})
        join, invite, leave = {}, {}, {}
        for room in self.rooms.values():
            if not room_passes(rfilter, room.room_id):
                continue
            mrec = room.state.get(('m.room.member', user))
            if mrec is None:
                continue
            membership = mrec.event['content'].get('membership')
            changed = since is None or mrec.pos > since
            # timeline/state "rooms" narrow what joined rooms show; invites
            # and leaves obey the room filter's own rooms/not_rooms
            if membership == 'join' and not room_passes(tfilter, room.room_id):
                continue
            if membership == 'join':
                entry = self.joined_room_entry(room, user, device, None if changed else since,
                                               head, filt, full_state or changed, used)
                if entry:
                    join[room.room_id] = entry
            elif membership == 'invite' and changed:
                invite[room.room_id] = {'invite_state': {'events': self.stripped_state(room, mrec)}}
            elif membership in ('leave', 'ban') and changed and (since is not None or rfilter.get('include_leave')):
                limit = max(1, min(int(tfilter.get('limit', DEFAULT_TIMELINE_LIMIT)), 1000))
                _, timeline = self.timeline(room, user, device, since or 0, mrec.pos, tfilter, limit)
                leave[room.room_id] = {'timeline': timeline, 'state': {'events': []},
                                       'account_data': {'events': []}}
        body = {'next_batch': 's%d' % head,
                'rooms': {'join': join, 'invite': invite, 'leave': leave},
                'presence': {'events': []}, 'account_data': {'events': []},
                'device_one_time_keys_count': {}}
        return body, bool(join or invite or leave), used

    def resolve_filter(self, req, value, schema, allow_id=True):
        """A filter query parameter: inline JSON ('{...}') or a filter id."""
        if value is None:
            return {}
        if value.startswith('{') or not allow_id:
            try:
                f = json.loads(value)
            except ValueError as e:
                self.violation('not-json', req, 'filter parameter is not JSON: %s' % e)
                raise MatrixError(400, 'M_NOT_JSON', 'Invalid filter JSON')
            err = schema_error(schema, f)
            if err:
                self.violation('bad-json', req, 'inline filter invalid: %s' % err)
                raise MatrixError(400, 'M_BAD_JSON', 'Invalid filter: %s' % err)
            return f
        filters = self.filters.get(req.user, [])
        if not value.isdigit() or int(value) >= len(filters):
            raise MatrixError(404, 'M_NOT_FOUND', 'No such filter')
        return filters[int(value)]

    # ----- client-server handlers (called with self.lock held) ------------------

    def h_versions(self, req):
        return {'versions': SPEC_VERSIONS, 'unstable_features': {}}

    def h_wellknown(self, req):
        return {'m.homeserver': {'base_url': self.base_url}}

    def h_login_flows(self, req):
        if self.config['login'] == 'sso':
            return {'flows': [{'type': 'm.login.sso'}, {'type': 'm.login.token'}]}
        return {'flows': [{'type': 'm.login.password'}]}

    def h_login(self, req):
        body = req.body
        if self.config['login'] == 'sso' and body.get('type') == 'm.login.password':
            raise MatrixError(400, 'M_UNKNOWN', 'Password login has been disabled.')
        if body.get('type') != 'm.login.password':
            raise MatrixError(400, 'M_UNKNOWN', 'Bad login type.')
        ident = body.get('identifier')
        if ident is not None:
            if ident.get('type') != 'm.id.user' or not isinstance(ident.get('user'), str):
                raise MatrixError(400, 'M_UNKNOWN', 'Unsupported identifier type')
            name = ident['user']
        elif isinstance(body.get('user'), str):
            self.warning(req, 'login uses the deprecated top-level "user" field')
            name = body['user']
        else:
            raise MatrixError(400, 'M_MISSING_PARAM', 'Missing identifier')
        user = self.user_id(name)
        password = body.get('password')
        if user not in self.users or password is None or password != self.users[user]['password']:
            raise MatrixError(403, 'M_FORBIDDEN', 'Invalid username or password')
        device = body.get('device_id') or ''.join(secrets.choice(string.ascii_uppercase) for _ in range(10))
        token = self.new_token(user)
        self.tokens[token] = (user, device)
        out = {'user_id': user, 'access_token': token, 'device_id': device,
               'home_server': self.server_name}
        return self.with_refresh(out, token, user, device, body.get('refresh_token') is True)

    def new_token(self, user):
        return 'syt_%s_%s' % (base64.urlsafe_b64encode(user.encode()).decode().rstrip('='),
                              secrets.token_urlsafe(18))

    def h_logout(self, req):
        self.tokens.pop(req.token, None)
        return {}

    def h_whoami(self, req):
        return {'user_id': req.user, 'device_id': req.device, 'is_guest': False}

    def h_filter_post(self, req):
        if req.params['userId'] != req.user:
            raise MatrixError(403, 'M_FORBIDDEN', 'Cannot create filters for other users')
        filters = self.filters.setdefault(req.user, [])
        if req.body in filters:      # Synapse: an identical filter keeps its id
            return {'filter_id': str(filters.index(req.body))}
        filters.append(req.body)
        return {'filter_id': str(len(filters) - 1)}

    def h_filter_get(self, req):
        if req.params['userId'] != req.user:
            raise MatrixError(403, 'M_FORBIDDEN', 'Cannot get filters for other users')
        filters = self.filters.get(req.user, [])
        fid = req.params['filterId']
        if not fid.isdigit() or int(fid) >= len(filters):
            raise MatrixError(404, 'M_NOT_FOUND', 'No such filter')
        return filters[int(fid)]

    def h_sync(self, req):
        q = req.q
        filt = self.resolve_filter(req, q.get('filter'), self.spec.filter_schema)
        since = None
        # the cache key holds the whole token: the same room position with
        # another to-device position is another request
        cache_key = self.sync_cache_key(req)
        since_e2ee = self.e2ee_split_token(q)
        if 'since' in q:
            try:
                since = parse_token(q['since'], 's')
            except MatrixError:
                self.violation('invalid-param', req, '"since" is not a next_batch token: %r' % q['since'])
                raise
            if since > len(self.stream):
                self.warning(req, 'since token %r is from the future; clamped' % q['since'])
                since = len(self.stream)
        if self.raw_sync is not None:
            raw, self.raw_sync = self.raw_sync, None
            return Reply(raw['status'], raw=raw['body'].encode('utf-8'))
        if since is not None and self.take_hook('stale_sync'):
            # a server that answers at once and never moves on (a broken
            # worker, a proxy's cache): valid, and no progress
            req.hook = 'stale_sync'
            return {'next_batch': q['since']}
        cached = self.sync_cache_get(cache_key)
        if cached is not None:
            return cached
        if self.replay and since is not None and self.replay.get('user_id') in (None, req.user):
            older = [r.pos for r in self.stream if r.pos <= since][-self.replay['count']:]
            since = older[0] - 1 if older else since
            self.replay = None
            # the answer is the one for an older position: caching it under
            # the token asked for would give it again to the next request
            # with that token, whose next_batch it is, forever
            cache_key = None
        full_state = q.get('full_state') == 'true'
        deadline = time.monotonic() + int(q.get('timeout', '0')) / 1000.0
        while True:
            body, has_updates, used = self.sync_response(req.user, req.device, since, filt, full_state)
            has_updates = self.e2ee_sync(req, body, since, since_e2ee) or has_updates
            remaining = deadline - time.monotonic()
            if has_updates or since is None or full_state or remaining <= 0:
                break
            self.cond.wait(remaining)
        for kind, room_id in used:
            self.forced_limits.pop(room_id, None)
        # Synapse caches no empty answer; nor one that leaves the position
        # where it was (a forced limit, a device list change): asked again
        # with that position, it would be given again for two minutes
        if cache_key is not None and (has_updates or since is None) and body['next_batch'] != q.get('since'):
            self.sync_cache_put(cache_key, body)
        return body

    def joined_room(self, req, room_id, error=(403, 'M_FORBIDDEN')):
        room = self.rooms.get(room_id)
        if room is None or room.membership(req.user) != 'join':
            raise MatrixError(error[0], error[1], 'User %s not in room %s' % (req.user, room_id))
        return room

    def paginate(self, room, q, default_dir, default_limit):
        """Events of a /messages- or /relations-style page: (recs, start pos, end pos or None)."""
        direction = q.get('dir', default_dir)
        limit = max(1, min(int(q.get('limit', default_limit)), 1000))
        head = len(self.stream)
        start = parse_token(q['from']) if 'from' in q else (head if direction == 'b' else 0)
        to = parse_token(q['to']) if 'to' in q else None
        if direction == 'b':
            recs = [r for r in reversed(room.events) if r.pos <= start and (to is None or r.pos > to)]
        else:
            recs = [r for r in room.events if start < r.pos <= head and (to is None or r.pos <= to)]
        return recs, start, direction, limit

    def h_messages(self, req):
        room = self.joined_room(req, req.params['roomId'])
        filt = self.resolve_filter(req, req.q.get('filter'), self.spec.room_event_filter_schema, allow_id=False)
        try:
            recs, start, direction, limit = self.paginate(room, req.q, 'b', 10)
        except MatrixError:
            self.violation('invalid-param', req, 'from/to is not a token this server issued')
            raise
        recs = [r for r in recs if event_passes(filt, r.event)]
        chunk = recs[:limit]
        out = {'chunk': [self.client_event(r, req.user, req.device) for r in chunk],
               'start': req.q.get('from', 't%d' % start)}
        if self.take_hook('empty_pages'):
            # Synapse: a page whose events the user may not see is empty
            # but still has an `end`; the client must go on.
            return dict(out, chunk=[], end=out['start'])
        if len(recs) > limit:       # more events in this direction
            out['end'] = 't%d' % (chunk[-1].pos - 1 if direction == 'b' else chunk[-1].pos)
        return out

    def h_relations(self, req):
        room = self.joined_room(req, req.params['roomId'], (404, 'M_NOT_FOUND'))
        parent_id = req.params['eventId']
        if self.find_event(room, parent_id) is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'Event not found')
        rel_type, event_type = req.params.get('relType'), req.params.get('eventType')
        recurse = req.q.get('recurse') == 'true'
        targets, depth = {parent_id}, 0
        related = set()
        for depth in range(1, (3 if recurse else 1) + 1):
            found = {r.event['event_id'] for r in room.events
                     if isinstance(r.event['content'].get('m.relates_to'), dict)
                     and r.event['content']['m.relates_to'].get('event_id') in targets
                     and 'rel_type' in r.event['content']['m.relates_to']} - related
            related |= found
            targets = found
            if not found:
                break
        try:
            recs, _, direction, limit = self.paginate(room, req.q, 'b', 5)
        except MatrixError:
            self.violation('invalid-param', req, 'from/to is not a token this server issued')
            raise
        recs = [r for r in recs if r.event['event_id'] in related
                and (rel_type is None or r.event['content']['m.relates_to'].get('rel_type') == rel_type)
                and (event_type is None or r.event['type'] == event_type)]
        chunk = recs[:limit]
        out = {'chunk': [self.client_event(r, req.user, req.device) for r in chunk]}
        if len(recs) > limit:
            out['next_batch'] = 't%d' % (chunk[-1].pos - 1 if direction == 'b' else chunk[-1].pos)
        if 'recurse' in req.q:
            out['recursion_depth'] = depth if recurse else 1
        return out

    def h_send(self, req):
        room = self.joined_room(req, req.params['roomId'])
        etype, content = req.params['eventType'], req.body
        key = (req.user, req.device, req.route_path)
        if self.txn_known(key):  # retransmission: same answer, no new event
            event_id, old_body = self.txns[key][:2]
            if json.loads(old_body) != content:
                self.violation('txn-reuse', req, 'txnId %r reused with different content' % req.params['txnId'])
            return {'event_id': event_id}
        self.rate_limit(req)
        if room.power_level(req.user) < room.required_level(etype, False):
            raise MatrixError(403, 'M_FORBIDDEN', 'You don\'t have permission to post %s events' % etype)
        ev = self.build_event(room, req.user, etype, content)
        for problem in self.check_event_content(room, ev):
            self.violation('invalid-event', req, problem)
            raise MatrixError(400, 'M_BAD_JSON', problem)
        try:
            self.check_relation_target(room, ev)
        except MatrixError as e:
            if e.errcode != 'M_DUPLICATE_ANNOTATION':
                self.violation('relation', req, e.error)
            raise
        if max(len(etype), len(req.user)) > 255:
            raise MatrixError(413, 'M_TOO_LARGE', 'event type or sender too long')
        size = self.pdu_size(room, ev)
        if size > MAX_PDU_SIZE:
            raise MatrixError(413, 'M_TOO_LARGE', 'event too large (%d > %d bytes)' % (size, MAX_PDU_SIZE))
        raw = req.body_raw.decode('utf-8', 'replace')
        self.store(room, ev, 'api', txn_id=req.params['txnId'], device_id=req.device, raw_body=raw)
        self.txns[key] = (ev['event_id'], raw, time.monotonic())
        return {'event_id': ev['event_id']}

    def h_join(self, req):
        target = req.params.get('roomIdOrAlias') or req.params['roomId']
        room_id = self.aliases.get(target, target) if target.startswith('#') else target
        room = self.rooms.get(room_id)
        if room is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'No known servers / unknown room %s' % target)
        membership = room.membership(req.user)
        if membership != 'join':
            rules = room.state.get(('m.room.join_rules', ''))
            public = rules is not None and rules.event['content'].get('join_rule') == 'public'
            if membership == 'ban' or not (membership == 'invite' or public):
                raise MatrixError(403, 'M_FORBIDDEN', 'You are not invited to this room.')
            self.inject(room, req.user, 'm.room.member', {'membership': 'join'}, req.user, source='api')
        return {'room_id': room_id}

    def h_leave(self, req):
        room = self.rooms.get(req.params['roomId'])
        if room is None or room.membership(req.user) not in ('join', 'invite'):
            raise MatrixError(403, 'M_FORBIDDEN', 'User %s not in room' % req.user)
        self.inject(room, req.user, 'm.room.member', {'membership': 'leave'}, req.user, source='api')
        return {}

    def h_directory(self, req):
        room_id = self.aliases.get(req.params['roomAlias'])
        if room_id is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'Room alias %s not found.' % req.params['roomAlias'])
        return {'room_id': room_id, 'servers': [self.server_name]}

    def h_joined_rooms(self, req):
        return {'joined_rooms': [r for r, room in self.rooms.items() if room.membership(req.user) == 'join']}

    def h_state_get(self, req):
        room = self.joined_room(req, req.params['roomId'])
        rec = room.state.get((req.params['eventType'], req.params.get('stateKey', '')))
        if rec is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'Event not found.')
        if req.q.get('format') == 'event':
            return self.client_event(rec, req.user, req.device)
        return rec.event['content']

    def h_state_all(self, req):
        room = self.joined_room(req, req.params['roomId'])
        return Reply(200, [self.client_event(r, req.user, req.device) for r in room.state.values()])

    def h_joined_members(self, req):
        room = self.joined_room(req, req.params['roomId'])
        joined = {}
        for user in room.members('join'):
            content = room.state[('m.room.member', user)].event['content']
            joined[user] = {k2: content[k1] for k1, k2 in (('displayname', 'display_name'), ('avatar_url', 'avatar_url'))
                            if isinstance(content.get(k1), str)}
            # Synapse gives every user a display name (the localpart by default)
            joined[user].setdefault('display_name', user[1:].split(':')[0])
        return {'joined': joined}

    def h_event(self, req):
        room = self.joined_room(req, req.params['roomId'], (404, 'M_NOT_FOUND'))
        rec = self.find_event(room, req.params['eventId'])
        if rec is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'Event not found.')
        return self.client_event(rec, req.user, req.device)

    def h_ack(self, req):
        """Receipts, read markers, typing: accepted and forgotten."""
        self.joined_room(req, req.params['roomId'])
        return {}

    # ----- what real homeservers do (Synapse as the model) ---------------------
    # Each behaviour is on by default and can be switched off for one test
    # with POST /_test/config (see the module docstring).

    SYNC_CACHE_S = 120            # Synapse: caches.sync_response_cache_duration
    RC_MESSAGE = (0.2, 10)        # Synapse: rc_message per_second, burst_count
    TXN_TTL_S = 24 * 3600         # Synapse: HttpTransactionCache, 24 hours

    def init_realism(self):
        self.config = {'sync_cache': True, 'rate_limit': True, 'txn_ttl_ms': self.TXN_TTL_S * 1000,
                       'token_lifetime_ms': None, 'login': 'password', 'self_check': self.self_check}
        self.sync_cache = {}     # request key -> (monotonic time stored, body)
        self.buckets = {}        # user -> (level, monotonic time)
        self.hooks = {}          # one-shot test hooks: name -> count
        self.token_expiry = {}   # access token -> monotonic expiry
        self.refresh_tokens = {}  # refresh token -> (user, device)

    def take_hook(self, name):
        if self.hooks.get(name, 0) <= 0:
            return False
        self.hooks[name] -= 1
        return True

    def sync_cache_key(self, req):
        q = req.q
        return (req.user, req.device, q.get('filter'), q.get('since'), q.get('timeout', '0'),
                q.get('full_state', 'false'))

    def sync_cache_get(self, key):
        """A cached answer to an identical /sync, its ages brought up to date
        (Synapse caches the result and serialises it again for each request)."""
        if not self.config['sync_cache'] or key not in self.sync_cache:
            return None
        stored, body = self.sync_cache[key]
        elapsed = time.monotonic() - stored
        if elapsed > self.SYNC_CACHE_S:
            del self.sync_cache[key]
            return None
        body = json.loads(json.dumps(body))

        def bump(node):
            if isinstance(node, dict):
                if 'event_id' in node and isinstance(node.get('unsigned'), dict) and 'age' in node['unsigned']:
                    node['unsigned']['age'] += int(elapsed * 1000)
                for v in node.values():
                    bump(v)
            elif isinstance(node, list):
                for v in node:
                    bump(v)
        bump(body)
        return body

    def sync_cache_put(self, key, body):
        if self.config['sync_cache']:
            self.sync_cache[key] = (time.monotonic(), json.loads(json.dumps(body)))

    def txn_known(self, key):
        """A transaction id this device used within the server's memory time."""
        entry = self.txns.get(key)
        if entry is None:
            return False
        if len(entry) > 2 and time.monotonic() - entry[2] > self.config['txn_ttl_ms'] / 1000.0:
            del self.txns[key]
            return False
        return True

    def rate_limit(self, req):
        """rc_message: a leaky bucket per user; 429 with retry_after_ms and a
        Retry-After header, as Synapse answers."""
        if not self.config['rate_limit']:
            return
        rate, burst = self.RC_MESSAGE
        now = time.monotonic()
        level, last = self.buckets.get(req.user, (0.0, now))
        level = max(0.0, level - (now - last) * rate)
        if level + 1 > burst:
            wait_ms = int(math.ceil((level + 1 - burst) / rate * 1000))
            self.buckets[req.user] = (level, now)
            raise MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too Many Requests', retry_after_ms=wait_ms)
        self.buckets[req.user] = (level + 1, now)

    def token_expired(self, token):
        exp = self.token_expiry.get(token)
        return exp is not None and time.monotonic() >= exp

    def with_refresh(self, out, token, user, device, wants_refresh):
        """Add expires_in_ms + refresh_token to a login/refresh answer when
        tokens expire on this server and the client asked for refreshing."""
        lifetime = self.config['token_lifetime_ms']
        if lifetime and wants_refresh:
            self.token_expiry[token] = time.monotonic() + lifetime / 1000.0
            refresh = 'syr_' + secrets.token_urlsafe(18)
            self.refresh_tokens[refresh] = (user, device)
            out.update(expires_in_ms=lifetime, refresh_token=refresh)
        return out

    def h_refresh(self, req):
        pair = self.refresh_tokens.pop(req.body.get('refresh_token'), None)
        if pair is None:
            raise MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unknown refresh token', soft_logout=False)
        user, device = pair
        for tok in [t for t, v in self.tokens.items() if v == pair]:
            del self.tokens[tok]     # the old access token ends with its refresh
        token = self.new_token(user)
        self.tokens[token] = (user, device)
        return self.with_refresh({'access_token': token}, token, user, device, True)

    REDACT_KEEP = {'m.room.member': ('membership', 'join_authorised_via_users_server'),
                   'm.room.create': None, 'm.room.join_rules': ('join_rule', 'allow'),
                   'm.room.power_levels': ('ban', 'events', 'events_default', 'invite', 'kick',
                                           'redact', 'state_default', 'users', 'users_default'),
                   'm.room.history_visibility': ('history_visibility',)}

    def redact(self, room, target, sender, reason=None, txn=None, device=None, raw=None):
        """Store an m.room.redaction and strip the target's content (v11 rules)."""
        content = {'redacts': target.event['event_id']}
        if reason is not None:
            content['reason'] = reason
        ev = self.build_event(room, sender, 'm.room.redaction', content)
        if self.room_version(room) in ('1', '2', '3', '4', '5', '6', '7', '8', '9', '10'):
            ev['redacts'] = content.pop('redacts')
        rec = self.store(room, ev, 'api' if txn else 'test', txn_id=txn, device_id=device, raw_body=raw)
        keep = self.REDACT_KEEP.get(target.event['type'], ())
        old = target.event['content']
        target.event = dict(target.event, content=dict(old) if keep is None else
                            {k: old[k] for k in keep if k in old})
        target.redacted_by = rec
        return rec

    def room_version(self, room):
        create = room.state.get(('m.room.create', ''))
        return str(create.event['content'].get('room_version', '1')) if create else '1'

    def h_redact(self, req):
        room = self.joined_room(req, req.params['roomId'])
        key = (req.user, req.device, req.route_path)
        if self.txn_known(key):
            return {'event_id': self.txns[key][0]}
        self.rate_limit(req)
        target = self.find_event(room, req.params['eventId'])
        if target is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'Event not found.')
        if target.event['sender'] != req.user and \
                room.power_level(req.user) < (room.state.get(('m.room.power_levels', '')).event['content']
                                              .get('redact', 50) if ('m.room.power_levels', '') in room.state else 50):
            raise MatrixError(403, 'M_FORBIDDEN', 'You cannot redact this event')
        raw = req.body_raw.decode('utf-8', 'replace')
        rec = self.redact(room, target, req.user, (req.body or {}).get('reason'), req.params['txnId'],
                          req.device, raw)
        self.txns[key] = (rec.event['event_id'], raw or '{}', time.monotonic())
        return {'event_id': rec.event['event_id']}

    def c_config(self, body, query):
        """Switch realistic behaviours off (or on) for one test."""
        for k, v in body.items():
            if k not in self.config:
                raise MatrixError(400, 'M_INVALID_PARAM', 'unknown setting %r' % k)
            self.config[k] = v
        if not self.config['sync_cache']:
            self.sync_cache.clear()
        self.self_check = bool(self.config['self_check'])
        return Reply(200, dict(self.config))

    def c_expire_tokens(self, body, query):
        """Every access token of a user expires now (soft logout on next use)."""
        user = self.user_id(body['user_id'])
        for tok, (u, _) in self.tokens.items():
            if u == user:
                self.token_expiry[tok] = time.monotonic()
        return Reply(200, {})

    def c_redact(self, body, query, room_id):
        room = self.test_room(room_id)
        target = self.find_event(room, body['event_id'])
        if target is None:
            raise MatrixError(404, 'M_NOT_FOUND', 'no such event')
        rec = self.redact(room, target, self.user_id(body['sender']), body.get('reason'))
        return Reply(200, {'event_id': rec.event['event_id']})

    def c_upgrade(self, body, query, room_id):
        """Upgrade a room as Synapse does (POST /rooms/{id}/upgrade):
        {sender, room_version?=12, public?}.  A new room with a predecessor,
        the power levels copied, aliases moved, the old room tombstoned and
        its power levels raised so that ordinary members stop talking."""
        old = self.test_room(room_id)
        sender = self.user_id(body['sender'])
        if old.power_level(sender) < old.required_level('m.room.tombstone', True):
            raise MatrixError(403, 'M_FORBIDDEN', 'not allowed to upgrade')
        pl = old.state.get(('m.room.power_levels', ''))
        new_id = self.c_rooms({'creator': sender, 'room_version': str(body.get('room_version', '12')),
                               'public': body.get('public'),
                               'power_levels': pl.event['content'] if pl else None},
                              {}).body['room_id']
        new = self.rooms[new_id]
        create = new.state[('m.room.create', '')]
        create.event['content']['predecessor'] = {'room_id': room_id}
        for alias, rid in list(self.aliases.items()):
            if rid == room_id:
                self.aliases[alias] = new_id
                self.inject(new, sender, 'm.room.canonical_alias', {'alias': alias}, '')
        rec = self.inject(old, sender, 'm.room.tombstone',
                          {'body': 'This room has been replaced', 'replacement_room': new_id}, '')
        if pl:
            content = dict(pl.event['content'])
            content['events_default'] = max(50, content.get('events_default', 0))
            content['invite'] = max(50, content.get('invite', 0))
            self.inject(old, sender, 'm.room.power_levels', content, '')
        return Reply(200, {'replacement_room': new_id, 'tombstone': rec.event['event_id']})

    def c_kick(self, body, query):
        """{room_id, sender, user_id, membership?=leave|ban, reason?}"""
        room = self.test_room(body['room_id'])
        membership = body.get('membership', 'leave')
        content = {'membership': membership}
        if body.get('reason'):
            content['reason'] = body['reason']
        rec = self.inject(room, self.user_id(body['sender']), 'm.room.member', content,
                          self.user_id(body['user_id']))
        return Reply(200, {'event_id': rec.event['event_id']})
    # ----- end-to-end encryption (keys, to-device) ------------------------------

    def e2ee_init(self):
        self.e2ee_pos = 0            # e2ee stream: to-device messages, key changes
        self.device_keys = {}        # (user, device) -> DeviceKeys
        self.otks = {}               # (user, device) -> {key_id: key object}
        self.fallback = {}           # (user, device) -> [key_id, key object, used]
        self.key_changes = {}        # user -> e2ee position of the last change
        self.to_device = {}          # (user, device) -> [(pos, event)]
        self.to_device_txns = set()  # (user, device, txnId)
        self.xsign = {}              # user -> {'master', 'self_signing', 'user_signing'}

    def e2ee_split_token(self, q):
        """Strip the e2ee position from q['since'] ('s42.7'); returns it (0 if none)."""
        since = q.get('since')
        if since is None or '.' not in since:
            return 0
        base, _, pos = since.partition('.')
        if not pos.isdigit():
            raise MatrixError(400, 'M_INVALID_PARAM', 'Unknown or malformed token %r' % since)
        q['since'] = base
        return int(pos)

    def e2ee_shares_room(self, a, b):
        return any(room.membership(a) == 'join' and room.membership(b) == 'join'
                   for room in self.rooms.values())

    def e2ee_sync(self, req, body, since, since_e2ee):
        """Add the E2EE sections to a /sync body; True if they hold news."""
        key = (req.user, req.device)
        queue = [m for m in self.to_device.get(key, []) if m[0] > since_e2ee]
        self.to_device[key] = queue          # what the client acknowledged is gone
        events = [ev for _, ev in queue[:100]]
        body['to_device'] = {'events': events}
        changed = []
        if since is not None:
            changed = sorted(u for u, pos in self.key_changes.items()
                             if pos > since_e2ee and (u == req.user or self.e2ee_shares_room(req.user, u)))
            body['device_lists'] = {'changed': changed, 'left': []}
        count = sum(1 for k in self.otks.get(key, {}) if k.startswith('signed_curve25519:'))
        body['device_one_time_keys_count'] = {'signed_curve25519': count}
        fb = self.fallback.get(key)
        body['device_unused_fallback_key_types'] = ['signed_curve25519'] if fb and not fb[2] else []
        if self.e2ee_pos:
            upto = queue[99][0] if len(queue) > 100 else self.e2ee_pos
            body['next_batch'] += '.%d' % upto
        return bool(events or changed)

    def e2ee_bump(self):
        self.e2ee_pos += 1
        self.cond.notify_all()
        return self.e2ee_pos

    def e2ee_check_signed(self, req, obj, user, device, ed_key, what):
        """A self-signature by user's device key, as clients check it."""
        sig = ((obj.get('signatures') or {}).get(user) or {}).get('ed25519:%s' % device)
        if not isinstance(sig, str):
            self.violation('bad-signature', req, '%s: no signature by ed25519:%s' % (what, device))
            raise MatrixError(400, 'M_INVALID_SIGNATURE', '%s is not signed' % what)
        if pyolm is None or ed_key is None:
            return
        signed = {k: v for k, v in obj.items() if k not in ('signatures', 'unsigned')}
        try:
            pyolm.ed25519_verify(ed_key, canonical_json(signed), sig)
        except pyolm.OlmVerifyError:
            self.violation('bad-signature', req, '%s: the signature does not verify over its canonical JSON' % what)
            raise MatrixError(400, 'M_INVALID_SIGNATURE', '%s: bad signature' % what)

    def h_keys_upload(self, req):
        key = (req.user, req.device)
        body = req.body
        dk = body.get('device_keys')
        if dk is not None:
            if dk.get('user_id') != req.user or dk.get('device_id') != req.device:
                self.violation('invalid-param', req, 'device_keys are not for the requesting device')
                raise MatrixError(400, 'M_INVALID_PARAM', 'device_keys user_id/device_id mismatch')
            ed = (dk.get('keys') or {}).get('ed25519:%s' % req.device)
            self.e2ee_check_signed(req, dk, req.user, req.device, ed, 'device_keys')
            if self.device_keys.get(key) != dk:
                old = ((self.device_keys.get(key) or {}).get('keys') or {}).get('ed25519:%s' % req.device)
                if old is not None and old != ed:
                    # a new identity under an old device id (the device was
                    # deleted and made again): its old keys are gone with it
                    self.otks.pop(key, None)
                    self.fallback.pop(key, None)
                self.device_keys[key] = dk
                self.key_changes[req.user] = self.e2ee_bump()
        ed = ((self.device_keys.get(key) or {}).get('keys') or {}).get('ed25519:%s' % req.device)
        mine = self.otks.setdefault(key, {})
        for kid, k in (body.get('one_time_keys') or {}).items():
            if isinstance(k, dict):
                self.e2ee_check_signed(req, k, req.user, req.device, ed, 'one-time key %s' % kid)
            if kid in mine and mine[kid] != k:
                raise MatrixError(400, 'M_UNKNOWN', 'One time key %s already exists' % kid)
            mine[kid] = k
        for kid, k in (body.get('fallback_keys') or {}).items():
            if isinstance(k, dict):
                self.e2ee_check_signed(req, k, req.user, req.device, ed, 'fallback key %s' % kid)
            self.fallback[key] = [kid, k, False]
        counts = {}
        for kid in mine:
            alg = kid.split(':')[0]
            counts[alg] = counts.get(alg, 0) + 1
        counts.setdefault('signed_curve25519', 0)
        return {'one_time_key_counts': counts}

    def h_keys_query(self, req):
        out = {'device_keys': {}, 'failures': {}, 'master_keys': {}, 'self_signing_keys': {}}
        for user, devices in (req.body.get('device_keys') or {}).items():
            mine = {d: dict(k) for (u, d), k in self.device_keys.items()
                    if u == user and (not devices or d in devices)}
            out['device_keys'][user] = mine
            xs = self.xsign.get(user, {})
            if 'master' in xs:
                out['master_keys'][user] = xs['master']
            if 'self_signing' in xs:
                out['self_signing_keys'][user] = xs['self_signing']
        if req.user in self.xsign and 'user_signing' in self.xsign[req.user]:
            out['user_signing_keys'] = {req.user: self.xsign[req.user]['user_signing']}
        return out

    def h_keys_claim(self, req):
        out = {}
        for user, devices in (req.body.get('one_time_keys') or {}).items():
            for device, alg in devices.items():
                key = (user, device)
                mine = self.otks.get(key, {})
                kid = next((k for k in mine if k.split(':')[0] == alg), None)
                if kid is not None:
                    found = {kid: mine.pop(kid)}
                elif self.fallback.get(key) and self.fallback[key][0].split(':')[0] == alg:
                    self.fallback[key][2] = True
                    found = {self.fallback[key][0]: self.fallback[key][1]}
                else:
                    continue
                out.setdefault(user, {})[device] = found
        return {'one_time_keys': out, 'failures': {}}

    def h_keys_changes(self, req):
        lo = self.e2ee_split_token({'since': req.q['from']})
        hi = self.e2ee_split_token({'since': req.q['to']}) or self.e2ee_pos
        changed = sorted(u for u, pos in self.key_changes.items()
                         if lo < pos <= hi and (u == req.user or self.e2ee_shares_room(req.user, u)))
        return {'changed': changed, 'left': []}

    def h_keys_device_signing(self, req):
        xs = self.xsign.setdefault(req.user, {})
        for name in ('master', 'self_signing', 'user_signing'):
            if name + '_key' in req.body:
                xs[name] = req.body[name + '_key']
        self.key_changes[req.user] = self.e2ee_bump()
        return {}

    def h_keys_signatures(self, req):
        """Signatures of devices and keys: merged into what is stored."""
        for user, objs in req.body.items():
            for kid, signed in objs.items():
                target = self.device_keys.get((user, kid))
                if target is None:
                    for xs in (self.xsign.get(user, {}).values()):
                        if kid in [k.split(':', 1)[1] for k in xs.get('keys', {})]:
                            target = xs
                if target is None:
                    continue
                for signer, sigs in (signed.get('signatures') or {}).items():
                    target.setdefault('signatures', {}).setdefault(signer, {}).update(sigs)
                self.key_changes[user] = self.e2ee_bump()
        return {'failures': {}}

    def h_send_to_device(self, req):
        txn = (req.user, req.device, req.params['txnId'])
        if txn in self.to_device_txns:
            return {}
        self.to_device_txns.add(txn)
        etype = req.params['eventType']
        for user, devices in (req.body.get('messages') or {}).items():
            known = {d for (u, d) in self.device_keys if u == user} | \
                    {d for (u, d) in self.tokens.values() if u == user}
            for device, content in devices.items():
                for d in (sorted(known) if device == '*' else [device]):
                    ev = {'sender': req.user, 'type': etype, 'content': content}
                    self.to_device.setdefault((user, d), []).append((self.e2ee_bump(), ev))
        return {}

    def c_e2ee(self, body, query):
        user = self.user_id(query['user_id'][-1])
        return Reply(200, {
            'devices': {d: k for (u, d), k in self.device_keys.items() if u == user},
            'one_time_keys': {d: len(k) for (u, d), k in self.otks.items() if u == user},
            'to_device': {d: len(q) for (u, d), q in self.to_device.items() if u == user}})

    HANDLERS = {
        ('GET', '/_matrix/client/versions'): h_versions,
        ('GET', '/.well-known/matrix/client'): h_wellknown,
        ('GET', V3 + '/login'): h_login_flows,
        ('POST', V3 + '/login'): h_login,
        ('POST', V3 + '/logout'): h_logout,
        ('GET', V3 + '/account/whoami'): h_whoami,
        ('POST', V3 + '/user/{userId}/filter'): h_filter_post,
        ('GET', V3 + '/user/{userId}/filter/{filterId}'): h_filter_get,
        ('GET', V3 + '/sync'): h_sync,
        ('GET', V3 + '/rooms/{roomId}/messages'): h_messages,
        ('PUT', V3 + '/rooms/{roomId}/send/{eventType}/{txnId}'): h_send,
        ('POST', V3 + '/join/{roomIdOrAlias}'): h_join,
        ('POST', V3 + '/rooms/{roomId}/join'): h_join,
        ('POST', V3 + '/rooms/{roomId}/leave'): h_leave,
        ('GET', V3 + '/directory/room/{roomAlias}'): h_directory,
        ('GET', V3 + '/joined_rooms'): h_joined_rooms,
        ('GET', V3 + '/rooms/{roomId}/state/{eventType}/{stateKey}'): h_state_get,
        ('GET', V3 + '/rooms/{roomId}/state/{eventType}'): h_state_get,
        ('GET', V3 + '/rooms/{roomId}/state'): h_state_all,
        ('GET', V3 + '/rooms/{roomId}/joined_members'): h_joined_members,
        ('GET', V3 + '/rooms/{roomId}/event/{eventId}'): h_event,
        ('GET', V1 + '/rooms/{roomId}/relations/{eventId}'): h_relations,
        ('GET', V1 + '/rooms/{roomId}/relations/{eventId}/{relType}'): h_relations,
        ('GET', V1 + '/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}'): h_relations,
        ('POST', V3 + '/rooms/{roomId}/receipt/{receiptType}/{eventId}'): h_ack,
        ('POST', V3 + '/rooms/{roomId}/read_markers'): h_ack,
        ('PUT', V3 + '/rooms/{roomId}/typing/{userId}'): h_ack,
        ('PUT', V3 + '/rooms/{roomId}/redact/{eventId}/{txnId}'): h_redact,
        ('POST', V3 + '/refresh'): h_refresh,
        ('POST', V3 + '/keys/upload'): h_keys_upload,
        ('POST', V3 + '/keys/query'): h_keys_query,
        ('POST', V3 + '/keys/claim'): h_keys_claim,
        ('GET', V3 + '/keys/changes'): h_keys_changes,
        ('POST', V3 + '/keys/device_signing/upload'): h_keys_device_signing,
        ('POST', V3 + '/keys/signatures/upload'): h_keys_signatures,
        ('PUT', V3 + '/sendToDevice/{eventType}/{txnId}'): h_send_to_device,
    }

    # ----- client request pipeline ------------------------------------------------

    def take_fault(self, req):
        """The first queued fault matching this request (its count decremented)."""
        for fault in self.faults:
            if fault['left'] > 0 and re.search(fault.get('path_regex') or '', req.path):
                fault['left'] -= 1
                if fault['left'] == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def fault_reply(self, fault, req):
        kind = fault['kind']
        if kind == '429':
            ms = int(fault.get('retry_after_ms', 1000))
            mode = fault.get('mode', 'both')
            body = {'errcode': 'M_LIMIT_EXCEEDED', 'error': 'Too Many Requests'}
            headers = {}
            if mode in ('body', 'both'):
                body['retry_after_ms'] = ms
            if mode in ('header', 'both'):
                headers['Retry-After'] = str(math.ceil(ms / 1000))
            if mode == 'date':           # the other form RFC 9110 allows
                headers['Retry-After'] = email.utils.formatdate(time.time() + math.ceil(ms / 1000),
                                                                usegmt=True)
            return Reply(429, body, headers=headers)
        if kind in ('500', '502', '503'):
            status = int(kind)
            if 'body' in fault:
                return Reply(status, raw=fault['body'].encode(), content_type=fault.get('content_type', 'text/plain'))
            if status == 500:
                return error_reply(500, 'M_UNKNOWN', 'Internal server error')
            title = {502: 'Bad Gateway', 503: 'Service Temporarily Unavailable'}[status]
            html = '<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center></body></html>\n'
            return Reply(status, raw=(html % (status, title, status, title)).encode(), content_type='text/html')
        if kind == 'unknown_token':
            if fault.get('invalidate') and req.token:
                pair = self.tokens.pop(req.token, None)
                if not fault.get('soft_logout') and pair is not None:
                    # a hard logout ends the device's session: its refresh
                    # tokens go too
                    for rt in [k for k, v in self.refresh_tokens.items() if v == pair]:
                        del self.refresh_tokens[rt]
            return error_reply(401, 'M_UNKNOWN_TOKEN', 'Access token has expired',
                               soft_logout=bool(fault.get('soft_logout', False)))
        return None

    def client_request(self, req):
        """Validate, apply faults, dispatch.  Returns (Reply or None to drop the
        connection, name of the fault applied or None)."""
        with self.lock:
            if time.monotonic() < self.outage_until:
                return None, 'outage'
            op, params = self.spec.route(req.method, req.route_path)
            if op is None:
                if params == 'method':
                    self.violation('method-not-allowed', req, 'no %s on this path in the spec' % req.method)
                    return error_reply(405, 'M_UNRECOGNIZED', 'Unrecognized request'), None
                self.violation('unknown-endpoint', req, 'not an endpoint of the Matrix spec')
                return error_reply(404, 'M_UNRECOGNIZED', 'Unrecognized request'), None
            req.op, req.params = op, params
            problems, req.body = op.check(params, req.query, req.body_raw)
            for p in problems:
                self.violation(p.kind, req, p.message)
            self.authenticate(req, op)
            fault = self.take_fault(req)
        if fault is not None:
            kind = fault['kind']
            if kind == 'slow':
                time.sleep(int(fault.get('delay_ms', 1000)) / 1000.0)
            elif kind == 'drop' and not fault.get('after'):
                return None, 'drop'
            elif kind != 'drop':
                with self.lock:
                    reply = self.fault_reply(fault, req)
                if reply is not None:
                    return reply, kind
        reply = self.dispatch(req, op, problems)
        if fault is not None and fault['kind'] == 'drop':
            return None, 'drop-after'
        return reply, fault and fault['kind']

    def authenticate(self, req, op):
        """Sets req.token/user/device and req.auth_error (a 401 Reply) if needed."""
        req.token = req.user = req.device = req.auth_error = None
        header = req.headers.get('Authorization')
        if header is not None:
            m = re.fullmatch(r'Bearer ([!-~]+)', header)
            if m:
                req.token = m.group(1)
            else:
                self.violation('bad-auth-header', req, 'Authorization header is not "Bearer <token>"')
        elif 'access_token' in req.query:
            req.token = req.query['access_token'][-1]
            self.warning(req, 'access token passed as deprecated query parameter')
        if req.token in self.tokens and self.token_expired(req.token):
            if op.auth:
                req.auth_error = error_reply(401, 'M_UNKNOWN_TOKEN', 'Access token has expired',
                                             soft_logout=True)
        elif req.token in self.tokens:
            req.user, req.device = self.tokens[req.token]
        elif op.auth:
            if req.token is None:
                req.auth_error = error_reply(401, 'M_MISSING_TOKEN', 'Missing access token')
            else:
                req.auth_error = error_reply(401, 'M_UNKNOWN_TOKEN', 'Unrecognised access token', soft_logout=False)

    def dispatch(self, req, op, problems):
        if req.auth_error is not None:
            return req.auth_error
        if problems:
            p = problems[0]
            return error_reply(p.status, p.errcode, p.message)
        handler = self.HANDLERS.get((op.method, op.template))
        if handler is None:
            with self.lock:
                self.violation('unimplemented', req, 'valid spec endpoint %s %s not implemented by hs.py'
                               % (op.method, op.template))
            return error_reply(404, 'M_UNRECOGNIZED', 'Unrecognized request')
        with self.lock:
            try:
                result = handler(self, req)
            except MatrixError as e:
                return error_reply(e.status, e.errcode, e.error, **e.extra)
            except Exception:
                self.violation('server-bug', req, traceback.format_exc())
                return error_reply(500, 'M_UNKNOWN', 'Internal server error')
            reply = result if isinstance(result, Reply) else Reply(200, result)
            if self.self_check and reply.status in op.responses and reply.body is not None:
                err = schema_error(op.responses[reply.status], reply.body)
                if err:
                    self.violation('self-check', req, 'our %d response does not match the spec: %s'
                                   % (reply.status, err))
            return reply

    # ----- control API (/_test/...) ------------------------------------------------

    def control(self, method, path, query, body):
        with self.lock:
            for (m, pattern), fn in self.CONTROL.items():
                match = re.fullmatch(pattern, path)
                if m == method and match:
                    try:
                        return fn(self, body, query, *map(urllib.parse.unquote, match.groups()))
                    except MatrixError as e:
                        return error_reply(e.status, e.errcode, e.error)
                    except (KeyError, TypeError, ValueError, AttributeError, re.error) as e:
                        return error_reply(400, 'M_BAD_JSON', 'bad control request: %r' % e)
                    except Exception:
                        return error_reply(500, 'M_UNKNOWN', traceback.format_exc())
        return error_reply(404, 'M_UNRECOGNIZED', 'unknown control endpoint')

    def c_health(self, body, query):
        return Reply(200, {'ok': True})

    def c_users(self, body, query):
        user = self.user_id(body['user_id'])
        self.users[user] = {'password': body.get('password', 'password')}
        token = body.get('access_token') or self.new_token(user)
        device = body.get('device_id') or 'TESTDEVICE'
        self.tokens[token] = (user, device)
        return Reply(200, {'user_id': user, 'access_token': token, 'device_id': device})

    def c_rooms(self, body, query):
        creator = self.user_id(body['creator'])
        version = str(body.get('room_version', '10'))
        if version not in ('10', '11', '12'):
            raise MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', 'room versions 10, 11, 12 only')
        if version == '12':     # the room id is the create event's reference hash
            room_id = body.get('room_id') or '!' + base64.urlsafe_b64encode(
                hashlib.sha256(secrets.token_bytes(32)).digest()).decode().rstrip('=')
        else:
            room_id = body.get('room_id') or '!%s:%s' % (
                ''.join(secrets.choice(string.ascii_letters) for _ in range(18)), self.server_name)
        if room_id in self.rooms:
            raise MatrixError(400, 'M_ROOM_IN_USE', 'room exists')
        room = self.rooms[room_id] = Room(room_id)
        create = {'room_version': version}
        if version == '10':
            create['creator'] = creator     # dropped from room version 11 on
        extra_creators = [self.user_id(u) for u in body.get('additional_creators', [])]
        if version == '12' and extra_creators:
            create['additional_creators'] = extra_creators
        self.inject(room, creator, 'm.room.create', create, '')
        self.inject(room, creator, 'm.room.member', {'membership': 'join'}, creator)
        pl = {'users': {creator: 100}, 'users_default': 0, 'events_default': 0, 'state_default': 50,
              'ban': 50, 'kick': 50, 'redact': 50, 'invite': 0,
              'events': {'m.room.name': 50, 'm.room.power_levels': 100, 'm.room.history_visibility': 100,
                         'm.room.canonical_alias': 50, 'm.room.avatar': 50, 'm.room.tombstone': 100,
                         'm.room.server_acl': 100, 'm.room.encryption': 100}}
        for k, v in (body.get('power_levels') or {}).items():     # merge what the test gives
            if k == 'users':
                v = {self.user_id(u): level for u, level in v.items()}
            pl[k] = dict(pl.get(k, {}), **v) if isinstance(v, dict) else v
        if version == '12':     # creators have infinite power and are not listed
            for c in [creator] + extra_creators:
                pl['users'].pop(c, None)
        if not body.get('no_power_levels'):
            self.inject(room, creator, 'm.room.power_levels', pl, '')
        alias = body.get('alias')
        if alias:
            alias = alias if alias.startswith('#') else '#%s:%s' % (alias, self.server_name)
            self.aliases[alias] = room_id
            self.inject(room, creator, 'm.room.canonical_alias', {'alias': alias}, '')
        self.inject(room, creator, 'm.room.join_rules',
                    {'join_rule': 'public' if body.get('public') else 'invite'}, '')
        self.inject(room, creator, 'm.room.history_visibility', {'history_visibility': 'shared'}, '')
        if body.get('name'):
            self.inject(room, creator, 'm.room.name', {'name': body['name']}, '')
        if body.get('encrypted'):
            self.inject(room, creator, 'm.room.encryption', {'algorithm': 'm.megolm.v1.aes-sha2'}, '')
        for member in map(self.user_id, body.get('members', [])):
            if member != creator:
                self.inject(room, member, 'm.room.member', {'membership': 'join'}, member)
        for invitee in map(self.user_id, body.get('invited', [])):
            self.inject(room, creator, 'm.room.member', {'membership': 'invite'}, invitee)
        return Reply(200, {'room_id': room_id})

    def test_room(self, room_id):
        if room_id not in self.rooms:
            raise MatrixError(404, 'M_NOT_FOUND', 'no such room %s' % room_id)
        return self.rooms[room_id]

    def c_invite(self, body, query, room_id):
        room = self.test_room(room_id)
        invitee = self.user_id(body['user_id'])
        rec = self.inject(room, self.user_id(body['sender']), 'm.room.member', {'membership': 'invite'}, invitee)
        return Reply(200, {'event_id': rec.event['event_id']})

    def c_send(self, body, query, room_id):
        room = self.test_room(room_id)
        rec = self.inject(room, self.user_id(body['sender']), body.get('type', 'm.room.message'),
                          body['content'], body.get('state_key'), body.get('origin_server_ts'))
        return Reply(200, {'event_id': rec.event['event_id']})

    def test_events(self, room_id, sender=None, etype=None, since=0):
        room = self.test_room(room_id)
        return [{'pos': r.pos, 'event': self.client_event(r), 'txn_id': r.txn_id,
                 'device_id': r.device_id, 'raw_body': r.raw_body, 'source': r.source}
                for r in room.events if r.pos > since
                and (sender is None or r.event['sender'] == sender)
                and (etype is None or r.event['type'] == etype)]

    def c_events(self, body, query):
        sender = query.get('sender', [None])[-1]
        return Reply(200, {'events': self.test_events(query['room_id'][-1], sender and self.user_id(sender),
                                                      query.get('type', [None])[-1],
                                                      int(query.get('since', ['0'])[-1])),
                           'last': len(self.stream)})

    def c_wait(self, body, query):
        deadline = time.monotonic() + int(body.get('timeout_ms', 10000)) / 1000.0
        sender = self.user_id(body['sender'])
        while True:
            events = self.test_events(body['room_id'], sender, body.get('type'), int(body.get('since', 0)))
            remaining = deadline - time.monotonic()
            if len(events) >= int(body.get('count', 1)):
                return Reply(200, {'timeout': False, 'events': events})
            if remaining <= 0:
                return Reply(408, {'timeout': True, 'events': events})
            self.cond.wait(remaining)

    def c_faults(self, body, query):
        kind = str(body['kind'])
        if kind == 'outage':
            self.outage_until = time.monotonic() + int(body.get('duration_ms', 1000)) / 1000.0
        elif kind == 'forget_txns':
            self.txns.clear()
        elif kind in ('empty_pages', 'stale_sync'):
            self.hooks[kind] = self.hooks.get(kind, 0) + int(body.get('count', 1))
        elif kind in ('429', '500', '502', '503', 'drop', 'slow', 'unknown_token'):
            re.compile(body.get('path_regex') or '')
            self.faults.append(dict(body, kind=kind, left=int(body.get('count', 1))))
        else:
            raise MatrixError(400, 'M_INVALID_PARAM', 'unknown fault kind %r' % kind)
        return Reply(200, {'queued': len(self.faults)})

    def c_reset_faults(self, body, query):
        self.faults.clear()
        self.outage_until = 0.0
        self.forced_limits.clear()
        self.replay = self.raw_sync = None
        self.hooks.clear()
        return Reply(200, {})

    def c_limit(self, body, query):
        self.test_room(body['room_id'])
        self.forced_limits[body['room_id']] = max(1, int(body.get('limit', 1)))
        return Reply(200, {})

    def c_replay(self, body, query):
        self.replay = {'count': int(body['count']),
                       'user_id': self.user_id(body['user_id']) if body.get('user_id') else None}
        return Reply(200, {})

    def c_raw_sync(self, body, query):
        self.raw_sync = {'body': body['body'], 'status': int(body.get('status', 200))}
        return Reply(200, {})

    def c_violations(self, body, query):
        return Reply(200, {'violations': self.violations, 'warnings': self.warnings})

    def c_reset_violations(self, body, query):
        self.violations.clear()
        self.warnings.clear()
        return Reply(200, {})

    def c_requests(self, body, query):
        return Reply(200, {'requests': self.requests})

    CONTROL = {
        ('GET', '/_test/health'): c_health,
        ('POST', '/_test/users'): c_users,
        ('POST', '/_test/rooms'): c_rooms,
        ('POST', '/_test/rooms/([^/]+)/invite'): c_invite,
        ('POST', '/_test/rooms/([^/]+)/send'): c_send,
        ('GET', '/_test/events'): c_events,
        ('POST', '/_test/wait'): c_wait,
        ('POST', '/_test/faults'): c_faults,
        ('POST', '/_test/reset_faults'): c_reset_faults,
        ('POST', '/_test/limit'): c_limit,
        ('POST', '/_test/replay'): c_replay,
        ('POST', '/_test/raw_sync'): c_raw_sync,
        ('GET', '/_test/violations'): c_violations,
        ('POST', '/_test/reset_violations'): c_reset_violations,
        ('GET', '/_test/requests'): c_requests,
        ('POST', '/_test/config'): c_config,
        ('POST', '/_test/expire_tokens'): c_expire_tokens,
        ('POST', '/_test/rooms/([^/]+)/redact'): c_redact,
        ('POST', '/_test/kick'): c_kick,
        ('POST', '/_test/rooms/([^/]+)/upgrade'): c_upgrade,
        ('GET', '/_test/e2ee'): c_e2ee,
    }


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

class Request:
    """What the handlers see of one client request."""

    def __init__(self, handler, body_raw):
        self.method, self.path, self.headers = handler.command, handler.path, handler.headers
        split = urllib.parse.urlsplit(handler.path)
        # Synapse still serves the r0 prefix as an alias of v3 (the
        # matrix-nio test clients use it).
        self.route_path = re.sub(r'^/_matrix/client/r0/', V3 + '/', split.path)
        self.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.q = {k: v[-1] for k, v in self.query.items()}     # last value of each
        self.body_raw, self.body = body_raw, None
        self.op = self.params = self.hook = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'          # keep-alive; every answer has Content-Length
    # Real homeservers (and the proxies in front of them) set TCP_NODELAY;
    # without it, a keep-alive client waits for delayed ACKs (~40 ms).
    disable_nagle_algorithm = True
    wbufsize = -1                          # one write per answer, flushed at its end
    server_version = 'backupbot-test-hs/1'
    sys_version = ''

    def log_message(self, fmt, *args):     # quiet; the --log file has the details
        pass

    def read_body(self):
        if 'chunked' in self.headers.get('Transfer-Encoding', '').lower():
            data = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get('Content-Length') or 0))

    def handle_any(self):
        hs = self.server.hs
        body = self.read_body()
        if self.path.startswith('/_test/'):
            split = urllib.parse.urlsplit(self.path)
            try:
                doc = json.loads(body) if body.strip() else {}
            except ValueError:
                return self.send(error_reply(400, 'M_NOT_JSON', 'control body not JSON'))
            return self.send(hs.control(self.command, split.path, urllib.parse.parse_qs(split.query), doc))
        hs.log_request(self, body)
        req = Request(self, body)
        reply, fault = hs.client_request(req)
        with hs.lock:
            hs.requests.append({'method': req.method, 'path': req.path, 'time': time.monotonic(),
                                'status': reply.status if reply else None, 'fault': fault or req.hook})
        if reply is None:              # drop: close without a single byte of answer
            self.close_connection = True
            return
        self.send(reply)

    def send(self, reply):
        self.send_response(reply.status)
        self.send_header('Content-Type', reply.content_type)
        self.send_header('Content-Length', str(len(reply.raw)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(reply.raw)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any


def default_spec(repo):
    """Where the spec is: $MATRIX_SPEC_DIR, else shared/matrix-spec beside
    the checkout, or beside the checkout it was cloned from (a fresh
    clone in /tmp still finds it)."""
    places = []
    if os.environ.get('MATRIX_SPEC_DIR'):
        places.append(os.environ['MATRIX_SPEC_DIR'])
    places.append(os.path.join(repo, '..', 'shared', 'matrix-spec'))
    try:
        origin = subprocess.run(['git', '-C', repo, 'config', 'remote.origin.url'],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ''
    if origin.startswith('/'):
        places.append(os.path.join(origin, '..', 'shared', 'matrix-spec'))
    for p in places:
        if os.path.isdir(os.path.join(p, 'data', 'api', 'client-server')):
            return p
    return places[0]


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(description='Stand-in Matrix homeserver for tests (see module docstring).')
    ap.add_argument('--port', type=int, default=0, help='port to listen on (0 = any free port)')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--spec', default=default_spec(repo),
                    help='matrix-spec checkout (containing data/api and data/event-schemas)')
    ap.add_argument('--log', help='append one JSON line per client request to this file')
    ap.add_argument('--server-name', default='localhost')
    ap.add_argument('--self-check', action='store_true',
                    help='validate our own responses against the spec response schemas')
    args = ap.parse_args()
    try:
        spec = Spec(os.path.normpath(args.spec))
    except SpecMissing:
        sys.exit('hs.py: Matrix spec not found at %s (expected data/api/client-server and '
                 'data/event-schemas/schema there); pass --spec DIR' % os.path.normpath(args.spec))
    hs = Homeserver(spec, args.server_name, args.log, args.self_check)
    missing = [k for k in Homeserver.HANDLERS if k not in spec.ops]
    if missing:
        sys.exit('hs.py: handlers for endpoints the spec does not define: %s' % missing)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.hs = hs
    port = server.server_address[1]
    hs.base_url = 'http://%s:%d' % (args.host, port)
    print('READY %d' % port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
