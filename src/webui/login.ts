// The sign-in page works as a plain form; this adds one-click sign-in from the link `berth ui`
// prints (/login#token=…): the token is in the fragment, so it never reaches server logs or
// the Referer, and it is removed from the address bar at once.
import './styles/app.css';

const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
if (m) {
  history.replaceState(null, '', '/login');
  const token = decodeURIComponent(m[1]);
  void fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' })
    .then((res) => {
      if (res.ok) { location.replace('/'); return; }
      const card = document.querySelector('.login-card');
      const p = document.createElement('p');
      p.className = 'login-error';
      p.setAttribute('role', 'alert');
      p.textContent = 'The token in the link is not valid (the daemon may have restarted). Run "berth ui" for the current one.';
      card?.insertBefore(p, card.querySelector('label'));
    });
}
