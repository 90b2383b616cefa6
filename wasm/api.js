// The JS API of keyrelay's Wasm module, linked with --post-js into both build/wasm/keyrelay.mjs (browser) and
// build/wasm/keyrelay.cjs (node). This code runs inside the Emscripten factory: `Module` is the object that
// createKeyrelay() resolves with. The raw embind functions (bindings.cpp, "kr_*") appear on Module when the
// runtime starts, so these wrappers look them up when called.
//
//   const kr = await createKeyrelay();
//   kr.version
//   kr.xmlrpc.encodeCall(method, params)          kr.xmlrpc.decodeResponse(body)
//   kr.oauth.basicAuthHeader(clientId, secret)    kr.oauth.parseTokenResponse(status, body)
//   kr.keap.findContactsByEmail(email)            kr.keap.updateContactName(id, given, family)
//   kr.keap.parseContacts(status, headers, body)  kr.keap.createContact(given, family, email)
//   kr.keap.bridgePlan(xmlrpcCallText)
//   kr.jira.searchUsers(email)                    kr.jira.parseUsers(status, headers, body, email)
//   kr.diagnose({status, headers, body, expect})
//
// Everything returns plain values. Protocol outcomes (an XML-RPC fault, an HTML page, a 401) are values
// ({ok:false, ...}); only a programming error (a wrong argument type) throws, here and nowhere else.
(function (kr) {
  'use strict';

  function raw(name) {
    var fn = kr['kr_' + name];
    if (typeof fn !== 'function') {
      throw new Error('keyrelay: the module is not initialized yet; await createKeyrelay() before calling it');
    }
    return fn;
  }

  var utf8Encoder = new TextEncoder();
  var utf8Decoder = new TextDecoder();

  // Writes text as UTF-8 into the module's input buffer (kr_input) and returns its length in bytes: one native
  // encodeInto instead of embind's per-character copy of a std::string argument. A first pass assumes one byte per
  // UTF-16 unit; past the first non-ASCII character the rest needs at most 3 bytes per unit.
  function writeInput(text) {
    var r = utf8Encoder.encodeInto(text, raw('input')(text.length, 0));
    if (r.read === text.length) return r.written;
    var view = raw('input')(r.written + (text.length - r.read) * 3, r.written);
    return r.written + utf8Encoder.encodeInto(text.substring(r.read), view.subarray(r.written)).written;
  }

  // value_json.cpp writes dates as {"\u0000": ms} and bytes as {"\u0000": [offset, length]} into `bytes` (no XML-RPC
  // member can be named "\u0000"). Replaces them in place; a member named "__proto__" stays an own property.
  function revive(value, bytes) {
    var tag = value['\u0000'];
    if (tag !== undefined) return typeof tag === 'number' ? new Date(tag) : bytes.slice(tag[0], tag[0] + tag[1]);
    var keys = Array.isArray(value) ? null : Object.keys(value);
    var n = keys ? keys.length : value.length;
    for (var i = 0; i < n; i++) {
      var key = keys ? keys[i] : i;
      var item = value[key];
      if (typeof item === 'object' && item !== null) {
        var revived = revive(item, bytes);
        if (revived !== item) value[key] = revived;
      }
    }
    return value;
  }

  function requireString(value, what) {
    if (typeof value !== 'string') {
      throw new TypeError('keyrelay: ' + what + ' must be a string, got ' + (value === null ? 'null' : typeof value));
    }
    return value;
  }

  kr['xmlrpc'] = {
    // -> the methodCall document (a string). Throws TypeError for a value XML-RPC has no type for.
    'encodeCall': function (method, params) {
      requireString(method, 'the XML-RPC method name');
      if (params === undefined) params = [];
      if (!Array.isArray(params)) throw new TypeError('keyrelay: XML-RPC params must be an array');
      var r = raw('xmlrpc_encodeCall')(method, params);
      if (!r['ok']) throw new TypeError('keyrelay: ' + r['message']);
      return r['xml'];
    },
    // -> {ok:true, value} | {ok:false, fault:{code, string}} | {ok:false, error:{code, message, hint}}
    'decodeResponse': function (body) {
      requireString(body, 'the XML-RPC response body');
      try {
        var r = raw('xmlrpc_decodeResponse')(writeInput(body));
        if (!r['ok']) return r;
        // One JSON.parse builds the whole value; the views into Wasm memory are read before the next call into it.
        var value = JSON.parse(utf8Decoder.decode(r['json']));
        if (r['tagged'] && typeof value === 'object' && value !== null) value = revive(value, r['bytes']);
        return { 'ok': true, 'value': value };
      } finally {
        raw('release')();
      }
    },
  };

  kr['oauth'] = {
    // -> "Basic ..." (RFC 6749 §2.3.1: both parts form-urlencoded, then base64)
    'basicAuthHeader': function (clientId, secret) {
      requireString(clientId, 'the client id');
      requireString(secret, 'the client secret');
      return raw('oauth_basicAuthHeader')(clientId, secret);
    },
    // -> {ok:true, token:{access_token, refresh_token, expires_in, scope, account}} | {ok:false, error}
    'parseTokenResponse': function (status, body) {
      return raw('oauth_parseTokenResponse')(status, body);
    },
  };

  kr['keap'] = {
    // -> {method, path, headers, body}, a request for the relay's /proxy/keap/...
    'findContactsByEmail': function (email) {
      return raw('keap_findContactsByEmail')(requireString(email, 'the email'));
    },
    'updateContactName': function (id, given, family) {
      var n = typeof id === 'string' && /^[0-9]+$/.test(id) ? Number(id) : id;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
        throw new TypeError('keyrelay: a Keap contact id is a positive integer, got ' + String(id));
      }
      requireString(given, 'the given name');
      requireString(family, 'the family name');
      return raw('keap_updateContactName')(n, given, family);
    },
    // -> {method, path, headers, body}: POST /contacts with the names and the email as EMAIL1 (the relay's allowlist
    //    lets this POST through, docs/api.md)
    'createContact': function (given, family, email) {
      requireString(given, 'the given name');
      requireString(family, 'the family name');
      return raw('keap_createContact')(given, family, requireString(email, 'the email'));
    },
    // -> {ok:true, contacts:[{id, given_name, family_name, emails}]} | {ok:false, error}
    'parseContacts': function (status, headers, body) {
      return raw('keap_parseContacts')(status, headers, body);
    },
    // An XML-RPC methodCall -> the Keap REST calls the relay's XML-RPC bridge makes for it:
    // {ok:true, calls:[{method, path, body, when}]} | {ok:false, fault:{code, string}}
    'bridgePlan': function (xmlrpcCallText) {
      try {
        return raw('keap_bridgePlan')(writeInput(requireString(xmlrpcCallText, 'the XML-RPC call')));
      } finally {
        raw('release')();
      }
    },
  };

  kr['jira'] = {
    // -> {method, path, headers, body}, a request for the relay's /proxy/jira/...
    'searchUsers': function (email) {
      return raw('jira_searchUsers')(requireString(email, 'the email'));
    },
    // -> {ok:true, users:[{accountId, displayName, emailAddress, active, accountType, match}], caveat?}
    //    | {ok:false, error}. match: "exact" (this email, ignoring case and surrounding spaces), "other_email" (Jira
    //    matched a prefix of a name or another email) or "email_hidden" (the user hides it: cannot be compared).
    'parseUsers': function (status, headers, body, email) {
      return raw('jira_parseUsers')(status, headers, body, requireString(email, 'the searched email'));
    },
  };

  // {status, headers, body, expect: "token" | "json" | "xmlrpc"} -> {code, summary, hint}
  kr['diagnose'] = function (response) {
    if (response === null || typeof response !== 'object') {
      throw new TypeError('keyrelay: diagnose takes {status, headers, body, expect}');
    }
    return raw('diagnose')(response);
  };

  var version;
  Object.defineProperty(kr, 'version', {
    enumerable: true,
    get: function () {
      if (version === undefined) version = raw('version')();
      return version;
    },
  });
})(Module);
