// A share link, /#share=TOKEN, opened (static/loader.js imports this only
// then). No server sees a fragment: the token goes in a body, to be
// redeemed for its HttpOnly cookie, and the address becomes the session's
// before the terminal starts. A refusal (revoked, expired, signed out) is
// thrown with the directory's words, for the loader to show; nothing starts.
export async function redeem(token) {
  const r = await fetch('/v1/shares/redeem', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
  const a = await r.json().catch(() => ({ error: `the directory answered ${r.status}` }));
  if (!r.ok) throw a.error;
  history.replaceState(null, '', `/?session=${a.session}`);
}
