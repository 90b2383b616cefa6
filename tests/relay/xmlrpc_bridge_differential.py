"""Differential test of the XML-RPC bridge: the same generated call sequences go to a sandbox's own XML-RPC endpoint
(DIRECT_URL, with the sandbox's PAT) and, on a second sandbox that starts from the same data, through the relay's
bridge (BRIDGE_URL, with the relay API key). Every answer must match field by field. The only differences allowed are
the ones docs/xmlrpc-bridge.md documents ("Differences"):
  - a bridge fault may say more after the sandbox's text (what to use instead): the sandbox's faultString must be a
    prefix of the bridge's, with the same faultCode;
and one that comes from this set-up, not from the bridge: the two sandboxes' clocks read a few milliseconds apart, so
DateCreated / LastUpdated may differ by at most CLOCK_SKEW seconds.
Run by tests/relay/xmlrpc_bridge_differential.test.mjs. SEED and SEQUENCES may be set in the environment."""

import os
import random
import socket
import sys
import xmlrpc.client

DIRECT = xmlrpc.client.ServerProxy(os.environ["DIRECT_URL"])
BRIDGE = xmlrpc.client.ServerProxy(os.environ["BRIDGE_URL"])
DIRECT_KEY = os.environ["DIRECT_KEY"]
BRIDGE_KEY = os.environ["BRIDGE_KEY"]
SEED = int(os.environ.get("SEED", "20261202"))
SEQUENCES = int(os.environ.get("SEQUENCES", "200"))
CLOCK_SKEW = 2
socket.setdefaulttimeout(20)   # a hung call fails with its sequence named, instead of stalling the run

FIELDS = ["Id", "FirstName", "LastName", "Email", "EmailAddress2", "EmailAddress3", "Phone1", "Phone2", "Company",
          "JobTitle", "StreetAddress1", "City", "State", "PostalCode", "Country", "DateCreated", "LastUpdated",
          "Groups", "OwnerID"]
WRITABLE = [f for f in FIELDS if f not in ("Id", "DateCreated", "LastUpdated", "Groups")]
FIRST = ["Ada", "Ben", "Paul", "Zoë", "Ann", "Anna", "O'Brien", "José", ""]
LAST = ["Lovelace", "Anderson", "Grover", "Smith", "Smithers", "Ng", ""]
EMAILS = ["ada@example.com", "ben.anderson@example.com", "paul@example.com", "ann@example.com", "anna@example.com",
          "zoe+tag@example.org", "PAUL@example.com", ""]
TEXT = ["", "x", "Leeds", "1 Main St", "VA", "22201", "USA", "CTO", "Acme & Sons", "<b>bold</b>", "0161 555 0100"]
TAGS = [10, 12, 31, 999]


class Generator:
    def __init__(self, rng):
        self.rng = rng
        self.ids = [5, 101, 4393]

    def contact_id(self):
        return self.rng.choice(self.ids + [424242])

    def value(self, field):
        r = self.rng
        if field == "OwnerID":
            return r.choice([0, 7, 12])
        if field == "FirstName":
            return r.choice(FIRST)
        if field == "LastName":
            return r.choice(LAST)
        if field.startswith("Email"):
            return r.choice(EMAILS)
        return r.choice(TEXT)

    def data(self):
        r = self.rng
        names = r.sample(WRITABLE, r.randint(0, 4))
        out = {n: self.value(n) for n in names}
        roll = r.random()
        if roll < 0.04:
            out["Groups"] = "1"            # read-only
        elif roll < 0.08:
            out["Birthday"] = "1990-01-01"  # not in the map
        elif roll < 0.12:
            out["FirstName"] = 42          # wrong type
        return out

    def selection(self):
        r = self.rng
        names = r.sample(FIELDS, r.randint(1, 6))
        if r.random() < 0.05:
            names.append("Nickname")
        return names

    def condition(self):
        r = self.rng
        field = r.choice(["Id", "Email", "FirstName", "LastName"])
        if field == "Id":
            return field, r.choice([r.choice(self.ids), str(r.choice(self.ids)), "%", "10%", "4%", "424242"])
        base = self.value(field)
        roll = r.random()
        if roll < 0.3 and base:
            return field, base[: r.randint(1, len(base))] + "%"
        if roll < 0.4:
            return field, "%"
        return field, base

    def call(self):
        """(method, params without the key, whether the method takes a key)."""
        r = self.rng
        kind = r.choice(["echo", "add", "dup", "update", "load", "findByEmail", "addToGroup", "removeFromGroup",
                         "findByField", "query", "count", "dsLoad", "dsUpdate", "dsAdd", "unknown", "wrongType"])
        limit, page = r.randint(1, 4), r.randint(0, 2)
        if kind == "echo":
            return "DataService.echo", [r.choice(["hello", "", "ünïcode & <xml>"])]
        if kind == "add":
            return "ContactService.add", [self.data()]
        if kind == "dup":
            d = self.data()
            d["Email"] = r.choice(EMAILS)
            return "ContactService.addWithDupCheck", [d, "Email"]
        if kind == "update":
            return "ContactService.update", [self.contact_id(), self.data()]
        if kind == "load":
            return "ContactService.load", [self.contact_id(), self.selection()]
        if kind == "findByEmail":
            return "ContactService.findByEmail", [r.choice(EMAILS), self.selection()]
        if kind in ("addToGroup", "removeFromGroup"):
            return "ContactService." + kind, [self.contact_id(), r.choice(TAGS)]
        if kind == "findByField":
            field, value = self.condition()
            return "DataService.findByField", ["Contact", limit, page, field, value, self.selection()]
        if kind == "query":
            query = dict(self.condition() for _ in range(r.randint(0, 2)))
            params = ["Contact", limit, page, query, self.selection()]
            if r.random() < 0.4:
                params += ["Id", r.choice([True, False])]
            return "DataService.query", params
        if kind == "count":
            return "DataService.count", ["Contact", dict(self.condition() for _ in range(r.randint(0, 2)))]
        if kind == "dsLoad":
            return "DataService.load", [r.choice(["Contact", "Contact", "Company"]), self.contact_id(),
                                        self.selection()]
        if kind == "dsUpdate":
            return "DataService.update", ["Contact", self.contact_id(), self.data()]
        if kind == "dsAdd":
            return "DataService.add", ["Contact", self.data()]
        if kind == "unknown":
            return r.choice(["ContactService.merge", "InvoiceService.createBlankOrder"]), [5, 101]
        return "ContactService.load", [str(self.contact_id()), ["Id"]]

    def learn(self, method, result):
        if method in ("ContactService.add", "DataService.add", "ContactService.addWithDupCheck") and \
                isinstance(result, int) and result not in self.ids:
            self.ids.append(result)


def invoke(server, key, method, params):
    fn = server
    for part in method.split("."):
        fn = getattr(fn, part)
    args = [key] + params   # echo too: its (key, text) form, so both sides authenticate the same way
    try:
        return fn(*args)
    except xmlrpc.client.Fault as f:
        return f


def seconds(dt):
    import datetime
    return datetime.datetime.strptime(dt.value, "%Y%m%dT%H:%M:%S").timestamp()


def same(direct, bridged, where):
    """None when equal under the documented rules, else a description of the difference."""
    if isinstance(direct, xmlrpc.client.Fault) or isinstance(bridged, xmlrpc.client.Fault):
        if not (isinstance(direct, xmlrpc.client.Fault) and isinstance(bridged, xmlrpc.client.Fault)):
            return f"{where}: {direct!r} vs {bridged!r}"
        if direct.faultCode != bridged.faultCode or not bridged.faultString.startswith(direct.faultString):
            return f"{where}: fault {direct.faultCode} {direct.faultString!r} vs {bridged.faultCode} " \
                   f"{bridged.faultString!r}"
        return None
    if type(direct) is not type(bridged):
        return f"{where}: {type(direct).__name__} {direct!r} vs {type(bridged).__name__} {bridged!r}"
    if isinstance(direct, list):
        if len(direct) != len(bridged):
            return f"{where}: {len(direct)} rows vs {len(bridged)}: {direct!r} vs {bridged!r}"
        for i, (a, b) in enumerate(zip(direct, bridged)):
            d = same(a, b, f"{where}[{i}]")
            if d:
                return d
        return None
    if isinstance(direct, dict):
        if list(direct) != list(bridged):
            return f"{where}: fields {list(direct)} vs {list(bridged)}"
        for k in direct:
            d = same(direct[k], bridged[k], f"{where}.{k}")
            if d:
                return d
        return None
    if isinstance(direct, xmlrpc.client.DateTime):
        return None if abs(seconds(direct) - seconds(bridged)) <= CLOCK_SKEW else f"{where}: {direct} vs {bridged}"
    return None if direct == bridged else f"{where}: {direct!r} vs {bridged!r}"


def main():
    rng = random.Random(SEED)
    gen = Generator(rng)
    calls = faults = 0
    methods = set()
    for n in range(SEQUENCES):
        for step in range(rng.randint(2, 7)):
            method, params = gen.call()
            side = "directly"
            try:
                direct = invoke(DIRECT, DIRECT_KEY, method, params)
                side = "through the bridge"
                bridged = invoke(BRIDGE, BRIDGE_KEY, method, params)
            except OSError as e:
                print(f"seed {SEED}: sequence {n} call {step} {method}{tuple(params)!r} {side}: {e!r}",
                      file=sys.stderr)
                return 1
            diff = same(direct, bridged, f"sequence {n} call {step} {method}{tuple(params)!r}")
            if diff:
                print(f"seed {SEED}: {diff}", file=sys.stderr)
                return 1
            gen.learn(method, direct)
            calls += 1
            faults += isinstance(direct, xmlrpc.client.Fault)
            methods.add(method)
    print(f"seed {SEED}: {SEQUENCES} sequences, {calls} calls ({faults} faults) over {len(methods)} methods: "
          f"the same answers directly and through the bridge")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
