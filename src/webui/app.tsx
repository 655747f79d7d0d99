// The UI's shell: navigation, theme, toasts, and the page for the current #/route.
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Toasts } from './components/ui.tsx';
import { useRoute } from './lib/router.ts';
import { BuildPage } from './pages/build.tsx';
import { ContainerPage } from './pages/container.tsx';
import { ContainersPage } from './pages/containers.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { ImagePage } from './pages/image.tsx';
import { ImagesPage } from './pages/images.tsx';
import { NetworksPage } from './pages/networks.tsx';
import { VolumesPage } from './pages/volumes.tsx';

const NAV: Array<{ id: string; label: string }> = [
  { id: 'dashboard', label: 'Dashboard' },
  { id: 'containers', label: 'Containers' },
  { id: 'images', label: 'Images' },
  { id: 'build', label: 'Build' },
  { id: 'volumes', label: 'Volumes' },
  { id: 'networks', label: 'Networks' },
];

type Theme = 'auto' | 'light' | 'dark';

function useTheme(): [Theme, (t: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('berth-theme') as Theme | null) ?? 'auto');
  useEffect(() => {
    const root = document.documentElement;
    if (theme === 'auto') root.removeAttribute('data-theme');
    else root.setAttribute('data-theme', theme);
    localStorage.setItem('berth-theme', theme);
  }, [theme]);
  return [theme, setTheme];
}

function Page({ parts }: { parts: string[] }): JSX.Element {
  const [section, id, tab] = parts;
  switch (section ?? 'dashboard') {
    case 'dashboard': return <DashboardPage />;
    case 'containers': return id ? <ContainerPage id={id} tab={tab ?? 'overview'} /> : <ContainersPage />;
    case 'images': return id ? <ImagePage id={id} tab={tab ?? 'overview'} /> : <ImagesPage />;
    case 'build': return <BuildPage />;
    case 'volumes': return <VolumesPage />;
    case 'networks': return <NetworksPage />;
    default: return <div class="state state-empty">No such page. <a href="#/dashboard">Go to the dashboard</a></div>;
  }
}

export function App(): JSX.Element {
  const route = useRoute();
  const [theme, setTheme] = useTheme();
  const [menuOpen, setMenuOpen] = useState(false);
  const section = route.parts[0] ?? 'dashboard';
  useEffect(() => {
    const item = NAV.find((n) => n.id === section);
    document.title = `${item ? item.label : 'Berth'} · Berth`;
    setMenuOpen(false);
  }, [section, route.parts.join('/')]);
  return (
    <div class={menuOpen ? 'shell menu-open' : 'shell'}>
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
      <aside class="sidebar">
        <div class="brand"><span class="logo" aria-hidden="true">⚓</span> Berth</div>
        <button type="button" class="btn-icon menu-toggle" aria-label="Menu" aria-expanded={menuOpen} onClick={() => setMenuOpen(!menuOpen)}>☰</button>
        <nav class="nav" aria-label="Main">
          {NAV.map((n) => (
            <a key={n.id} href={`#/${n.id}`} class={section === n.id ? 'nav-item active' : 'nav-item'} aria-current={section === n.id ? 'page' : undefined}>{n.label}</a>
          ))}
        </nav>
        <div class="sidebar-foot">
          <label class="theme-select">Theme{' '}
            <select value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value as Theme)}>
              <option value="auto">System</option>
              <option value="light">Light</option>
              <option value="dark">Dark</option>
            </select>
          </label>
          <form method="post" action="/logout"><button type="submit" class="btn btn-small">Sign out</button></form>
        </div>
      </aside>
      <main id="main" class="main" tabIndex={-1}>
        <Page parts={route.parts} />
      </main>
      <Toasts />
    </div>
  );
}
