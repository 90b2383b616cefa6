"""Python's own XML-RPC client (xmlrpc.client, written by no one here) drives the relay's XML-RPC bridge over HTTP:
every translated method, then the faults. Run by tests/relay/xmlrpc_bridge.test.mjs, which starts the sandbox and a
relay connected to it and passes BRIDGE_URL, BRIDGE_KEY and SANDBOX_URL."""

import json
import os
import unittest
import urllib.request
import xmlrpc.client

URL = os.environ["BRIDGE_URL"]
KEY = os.environ["BRIDGE_KEY"]
SANDBOX = os.environ["SANDBOX_URL"]


def sandbox(path, body):
    req = urllib.request.Request(SANDBOX + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def proxy(**kw):
    return xmlrpc.client.ServerProxy(URL, allow_none=False, **kw)


class Methods(unittest.TestCase):
    """Each translated method, as an old integration calls it: the relay API key as privateKey."""

    def setUp(self):
        self.api = proxy()

    def test_echo(self):
        self.assertEqual(proxy(headers=[("Authorization", "Bearer " + KEY)]).DataService.echo("ping"), "ping")
        self.assertEqual(self.api.DataService.echo(KEY, "ping"), "ping")

    def test_add_load_update(self):
        cid = self.api.ContactService.add(KEY, {"FirstName": "Alan", "LastName": "Turing",
                                                "Email": "alan.turing@example.com", "Phone1": "0161 555 0100",
                                                "City": "Wilmslow", "OwnerID": 7})
        self.assertIsInstance(cid, int)
        row = self.api.ContactService.load(KEY, cid, ["Id", "FirstName", "Email", "Phone1", "City", "OwnerID",
                                                      "DateCreated", "Company"])
        self.assertEqual(row["Id"], cid)
        self.assertEqual(row["FirstName"], "Alan")
        self.assertEqual(row["Phone1"], "0161 555 0100")
        self.assertEqual(row["City"], "Wilmslow")
        self.assertEqual(row["OwnerID"], 7)
        self.assertIsInstance(row["DateCreated"], xmlrpc.client.DateTime)
        self.assertNotIn("Company", row)  # no value: left out, as Keap's XML-RPC did
        self.assertEqual(self.api.ContactService.update(KEY, cid, {"JobTitle": "Fellow", "Email": "alan@k.example"}),
                         cid)
        row = self.api.DataService.load(KEY, "Contact", cid, ["JobTitle", "Email", "Phone1"])
        self.assertEqual(row, {"JobTitle": "Fellow", "Email": "alan@k.example", "Phone1": "0161 555 0100"})
        self.assertEqual(self.api.DataService.update(KEY, "Contact", cid, {"LastName": "M. Turing"}), cid)
        did = self.api.DataService.add(KEY, "Contact", {"FirstName": "Joan", "Email": "joan@example.com"})
        self.assertGreater(did, cid)

    def test_add_with_dup_check(self):
        same = self.api.ContactService.addWithDupCheck(KEY, {"Email": "paul@example.com", "JobTitle": "CFO"}, "Email")
        self.assertEqual(same, 5)
        self.assertEqual(self.api.ContactService.load(KEY, 5, ["JobTitle"]), {"JobTitle": "CFO"})
        new = self.api.ContactService.addWithDupCheck(KEY, {"Email": "dup.new@example.com"}, "Email")
        self.assertNotEqual(new, 5)
        again = self.api.ContactService.addWithDupCheck(KEY, {"Email": "dup.new@example.com", "FirstName": "D"},
                                                        "Email")
        self.assertEqual(again, new)

    def test_find_by_email(self):
        rows = self.api.ContactService.findByEmail(KEY, "ada@example.com", ["Id", "FirstName", "LastName"])
        self.assertEqual(rows, [{"Id": 101, "FirstName": "Ada", "LastName": "Lovelace"}])
        self.assertEqual(self.api.ContactService.findByEmail(KEY, "nobody@example.com", ["Id"]), [])

    def test_groups(self):
        self.assertIs(self.api.ContactService.addToGroup(KEY, 4393, 12), True)
        self.assertIs(self.api.ContactService.addToGroup(KEY, 4393, 10), True)
        self.assertEqual(self.api.ContactService.load(KEY, 4393, ["Groups"]), {"Groups": "10,12"})
        self.assertIs(self.api.ContactService.removeFromGroup(KEY, 4393, 10), True)
        self.assertEqual(self.api.ContactService.load(KEY, 4393, ["Groups"]), {"Groups": "12"})

    def test_find_by_field_query_count(self):
        rows = self.api.DataService.findByField(KEY, "Contact", 10, 0, "Email", "ben.anderson@example.com",
                                                ["Id", "LastName"])
        self.assertEqual(rows, [{"Id": 4393, "LastName": "Anderson"}])
        self.assertEqual(self.api.DataService.findByField(KEY, "Contact", 10, 0, "Id", 101, ["FirstName"]),
                         [{"FirstName": "Ada"}])
        rows = self.api.DataService.query(KEY, "Contact", 10, 0, {"LastName": "lov%"}, ["Id"])
        self.assertEqual(rows, [{"Id": 101}])
        everyone = self.api.DataService.query(KEY, "Contact", 1000, 0, {"Id": "%"}, ["Id"])
        ids = [r["Id"] for r in everyone]
        self.assertEqual(ids, sorted(ids))
        second = self.api.DataService.query(KEY, "Contact", 1, 1, {"Id": "%"}, ["Id"], "Id", False)
        self.assertEqual(second, [{"Id": sorted(ids, reverse=True)[1]}])
        self.assertEqual(self.api.DataService.count(KEY, "Contact", {"Id": "%"}), len(ids))
        self.assertEqual(self.api.DataService.count(KEY, "Contact", {"FirstName": "Ada"}), 1)


class Faults(unittest.TestCase):
    """Faults in Keap's shapes, never an HTTP error: xmlrpc.client raises Fault, not ProtocolError."""

    def setUp(self):
        self.api = proxy()

    def fault(self, call):
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            call()
        return caught.exception

    def test_unknown_method_names_the_rest_endpoint(self):
        f = self.fault(lambda: self.api.ContactService.merge(KEY, 5, 101))
        self.assertEqual(f.faultCode, 0)
        self.assertTrue(f.faultString.startswith("No such handler: ContactService.merge"), f.faultString)
        self.assertIn("/crm/rest/v2/contacts", f.faultString)
        f = self.fault(lambda: self.api.DataService.query(KEY, "Company", 10, 0, {}, ["Id"]))
        self.assertIn("/crm/rest/v2/companies", f.faultString)

    def test_wrong_parameter_types(self):
        f = self.fault(lambda: self.api.ContactService.load(KEY, "101", ["Id"]))
        self.assertEqual(f.faultString,
                         "No method matching arguments: java.lang.String, java.lang.String, [Ljava.lang.Object;")
        f = self.fault(lambda: self.api.ContactService.add(KEY, {"FirstName": 42}))
        self.assertEqual(f.faultString, "[InvalidParameter]FirstName must be a string")

    def test_record_not_found(self):
        f = self.fault(lambda: self.api.ContactService.load(KEY, 424242, ["Id"]))
        self.assertEqual(f.faultString, "[RecordNotFound]Record was not found: Contact 424242")
        f = self.fault(lambda: self.api.ContactService.update(KEY, 424242, {"FirstName": "x"}))
        self.assertEqual(f.faultString, "[RecordNotFound]Record was not found: Contact 424242")
        f = self.fault(lambda: self.api.ContactService.addToGroup(KEY, 101, 999))
        self.assertEqual(f.faultString, "[RecordNotFound]Record was not found: ContactGroup 999")

    def test_field_the_map_does_not_know(self):
        f = self.fault(lambda: self.api.ContactService.load(KEY, 101, ["Id", "Birthday"]))
        self.assertTrue(f.faultString.startswith("[NoFieldFound]No field found: Contact.Birthday"), f.faultString)

    def test_wrong_key(self):
        f = self.fault(lambda: self.api.ContactService.load("a-legacy-keap-key", 101, ["Id"]))
        self.assertTrue(f.faultString.startswith("[InvalidKey]"), f.faultString)
        self.assertNotIn(KEY, f.faultString)

    def test_hostile_xml_is_a_fault(self):
        body = b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x "xx">]><methodCall><methodName>&x;</methodName>' \
               b'</methodCall>'
        req = urllib.request.Request(URL, data=body, headers={"Content-Type": "text/xml"})
        with urllib.request.urlopen(req, timeout=10) as res:
            self.assertEqual(res.status, 200)
            text = res.read().decode()
        self.assertIn("<fault>", text)
        self.assertIn("DOCTYPE is disallowed", text)

    def test_huge_array_is_a_fault(self):
        # 5,000 names (about 190 KB of XML), well past the bridge's 200.
        f = self.fault(lambda: self.api.ContactService.load(KEY, 101, ["Id"] * 5000))
        self.assertTrue(f.faultString.startswith("[InvalidParameter]Too many fields: 5000"), f.faultString)

    def test_429_from_keap(self):
        # Keap's 429 says "throttle available: 0" for a minute: past the relay's retry budget, so it is not retried.
        sandbox("/sandbox/fail", {"path": "/keap/crm/rest/v2/contacts", "mode": "rate_limit", "count": 1})
        f = self.fault(lambda: self.api.ContactService.load(KEY, 101, ["Id"]))
        self.assertTrue(f.faultString.startswith("[ThrottleExceeded]"), f.faultString)


class Reauth(unittest.TestCase):
    """Last: it breaks the relay's Keap connection."""

    def test_needs_reauth_connection(self):
        sandbox("/sandbox/revoke", {"provider": "keap"})
        with self.assertRaises(xmlrpc.client.Fault) as caught:
            proxy().ContactService.load(KEY, 101, ["Id"])
        self.assertTrue(caught.exception.faultString.startswith("[ConnectionNeedsReauth]"),
                        caught.exception.faultString)


if __name__ == "__main__":
    suite = unittest.TestSuite()
    loader = unittest.defaultTestLoader
    for case in (Methods, Faults, Reauth):
        suite.addTests(loader.loadTestsFromTestCase(case))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    raise SystemExit(0 if result.wasSuccessful() else 1)
