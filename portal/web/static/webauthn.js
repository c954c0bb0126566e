// WebAuthn glue, the portal's only script. Buttons marked
// data-webauthn="register" or data-webauthn="login" run the ceremony
// against the server's JSON endpoints and then follow the server's "next".
(function () {
  'use strict';

  function decode(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    return Uint8Array.from(atob(s), function (c) { return c.charCodeAt(0); }).buffer;
  }

  function encode(buf) {
    var bytes = new Uint8Array(buf), s = '';
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  async function post(url, csrf, body) {
    var resp = await fetch(url, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify(body || {})
    });
    if (!resp.ok) { throw new Error('the server refused (' + resp.status + ')'); }
    return resp.json();
  }

  async function register(csrf) {
    var opts = (await post('/mfa/webauthn/register/begin', csrf)).publicKey;
    opts.challenge = decode(opts.challenge);
    opts.user.id = decode(opts.user.id);
    (opts.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    var cred = await navigator.credentials.create({ publicKey: opts });
    var r = cred.response;
    return post('/mfa/webauthn/register/finish', csrf, {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      response: {
        attestationObject: encode(r.attestationObject),
        clientDataJSON: encode(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : []
      }
    });
  }

  async function login(csrf, next) {
    var opts = (await post('/sign-in/webauthn/begin', csrf)).publicKey;
    opts.challenge = decode(opts.challenge);
    (opts.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    var cred = await navigator.credentials.get({ publicKey: opts });
    var r = cred.response;
    var finish = '/sign-in/webauthn/finish';
    if (next) { finish += '?next=' + encodeURIComponent(next); }
    return post(finish, csrf, {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      response: {
        authenticatorData: encode(r.authenticatorData),
        clientDataJSON: encode(r.clientDataJSON),
        signature: encode(r.signature),
        userHandle: r.userHandle ? encode(r.userHandle) : null
      }
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-webauthn]').forEach(function (btn) {
      btn.addEventListener('click', async function () {
        var status = document.getElementById('webauthn-status');
        btn.disabled = true;
        try {
          var ceremony = btn.dataset.webauthn === 'register' ? register : login;
          var result = await ceremony(btn.dataset.csrf, btn.dataset.next);
          window.location.assign(result.next);
        } catch (e) {
          if (status) { status.textContent = 'Security key step failed: ' + e.message; }
          btn.disabled = false;
        }
      });
    });
  });
})();
