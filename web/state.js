// The page's one state object, shared by the screens.

export const PROVIDERS = {
  keap: { name: 'Keap', what: 'contact' },
  jira: { name: 'Jira', what: 'user' },
};

export const state = {
  kr: null,            // the Wasm module (wasm/keyrelay.mjs)
  user: null,          // who is signed in
  connections: {},     // provider -> the relay's connection record (/api/connections)
  updated: new Set(),  // Keap contact ids changed in this session, marked in the results
};
