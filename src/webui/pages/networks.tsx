// Networks: list (addressing from IPAM, running containers attached), create, inspect (the
// attached containers with their addresses), remove, prune.
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { act, Async, ConfirmButton, Empty, Facts, JsonView, Modal, notify, PageHeader } from '../components/ui.tsx';
import { api, handleSignedOut, useApi } from '../lib/client.ts';
import { shortId } from '../lib/format.ts';
import { containersPerNetwork, isBuiltinNetwork, matches, networkAddressing, networkCreateBody, type NetworkFields, type NetworkSummary } from '../lib/resources.ts';
import { href } from '../lib/router.ts';
import '../styles/build.css';

function CreateNetwork({ onClose, onCreated }: { onClose: () => void; onCreated: (name: string) => void }): JSX.Element {
  const [f, setF] = useState<NetworkFields>({ name: '', driver: 'bridge' });
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof NetworkFields) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      await api.post('/networks/create', networkCreateBody(f));
      onCreated(f.name.trim());
    } catch (err) {
      if (!handleSignedOut(err)) setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title="Create a network" onClose={onClose} wide>
      <form class="form" onSubmit={submit} aria-label="Create a network">
        <div class="form-grid">
          <label>Name<input name="name" required value={f.name} onInput={set('name')} autofocus /></label>
          <label>Driver
            <select name="driver" value={f.driver} onChange={set('driver')}>
              <option value="bridge">bridge</option>
            </select>
          </label>
          <label>Subnet<input name="subnet" value={f.subnet ?? ''} onInput={set('subnet')} placeholder="optional, e.g. 10.20.0.0/24" /></label>
          <label>Gateway<input name="gateway" value={f.gateway ?? ''} onInput={set('gateway')} placeholder="optional, e.g. 10.20.0.1" /></label>
          <label class="span-2">Labels<textarea name="labels" rows={2} value={f.labels ?? ''} onInput={set('labels')} placeholder="key=value (one per line)" /></label>
          <label class="check"><input type="checkbox" name="internal" checked={f.internal ?? false} onChange={set('internal')} /> Internal (no access to outside networks)</label>
          <label class="check"><input type="checkbox" name="attachable" checked={f.attachable ?? false} onChange={set('attachable')} /> Attachable</label>
        </div>
        {error && <p class="form-error" role="alert">{error}</p>}
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>Cancel</button>
          <button type="submit" class="btn btn-primary" disabled={busy}>{busy ? 'Creating…' : 'Create'}</button>
        </div>
      </form>
    </Modal>
  );
}

function Inspect({ id }: { id: string }): JSX.Element {
  const n = useApi<NetworkSummary & Record<string, unknown>>(`/networks/${encodeURIComponent(id)}`);
  const [raw, setRaw] = useState(false);
  return (
    <Async state={n}>{(net) => {
      const eps = Object.entries(net.Containers ?? {});
      const bridgeName = net.Options?.['com.docker.network.bridge.name'];
      return (
        <div class="network-detail" data-testid="network-detail">
          <Facts rows={[
            ['ID', <span class="mono">{net.Id}</span>],
            ...(bridgeName ? [['Bridge', <span class="mono">{bridgeName}</span>] as [string, JSX.Element]] : []),
            ['Created', net.Created ? new Date(net.Created).toLocaleString() : ''],
            ['Labels', Object.entries(net.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')],
          ]} />
          <h3 class="detail-title">Connected containers</h3>
          {eps.length === 0 ? <p class="muted">No running container is connected.</p> : (
            <div class="table-wrap"><table class="table" aria-label={`Containers on ${net.Name}`} data-testid="network-containers">
              <thead><tr><th>Container</th><th>IPv4</th><th>IPv6</th><th>MAC</th></tr></thead>
              <tbody>
                {eps.map(([cid, ep]) => (
                  <tr key={cid}>
                    <td><a href={href('containers', cid)}>{ep.Name || shortId(cid)}</a> <span class="muted mono">{shortId(cid)}</span></td>
                    <td class="mono">{ep.IPv4Address || '—'}</td>
                    <td class="mono">{ep.IPv6Address || '—'}</td>
                    <td class="mono">{ep.MacAddress || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table></div>
          )}
          <button type="button" class="btn btn-small" aria-expanded={raw} onClick={() => setRaw(!raw)}>{raw ? 'Hide JSON' : 'Show JSON'}</button>
          {raw && <JsonView value={net} />}
        </div>
      );
    }}</Async>
  );
}

export function NetworksPage(): JSX.Element {
  const list = useApi<NetworkSummary[]>('/networks', undefined, { refreshMs: 5000 });
  const running = useApi<Array<{ NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> } }>>('/containers/json', undefined, { refreshMs: 5000 });
  const [search, setSearch] = useState('');
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<string>();
  const counts = useMemo(() => containersPerNetwork(running.data ?? []), [running.data]);
  const all = list.data ?? [];
  const shown = useMemo(() => all.filter((n) => matches(search, n.Name, n.Id, n.Driver, n.Labels ?? undefined, ...networkAddressing(n).map((a) => a.subnet)))
    .sort((a, b) => Number(isBuiltinNetwork(b.Name)) - Number(isBuiltinNetwork(a.Name)) || a.Name.localeCompare(b.Name)), [list.data, search]);
  const reload = (): void => { list.reload(); running.reload(); };

  return (
    <div class="page">
      <PageHeader title="Networks">
        <ConfirmButton label="Prune unused…" danger={false} confirmLabel="Prune" question="Remove every network that no container uses? The built-in bridge, host and none stay."
          onConfirm={() => act('Prune', async () => {
            const r = await api.post<{ NetworksDeleted: string[] | null }>('/networks/prune');
            notify('ok', r?.NetworksDeleted?.length ? `Removed ${r.NetworksDeleted.length} network${r.NetworksDeleted.length === 1 ? '' : 's'}: ${r.NetworksDeleted.join(', ')}` : 'No unused networks to remove');
          }).then(reload)} />
        <button type="button" class="btn btn-primary" onClick={() => setCreating(true)}>Create network</button>
      </PageHeader>
      <div class="toolbar" role="search">
        <input type="search" placeholder="Search name, ID, driver, subnet" aria-label="Search networks" value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        <span class="muted">{list.data ? `${shown.length} of ${all.length}` : ''}</span>
      </div>
      <Async state={list}>{() => (shown.length === 0 ? (
        <Empty>{all.length ? 'No network matches.' : <>No networks. <button type="button" class="btn btn-small" onClick={() => setCreating(true)}>Create one</button></>}</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table stack-sm" aria-label="Networks" data-testid="networks-table">
            <thead><tr><th>Name</th><th class="hide-sm">ID</th><th>Driver</th><th class="hide-sm">Scope</th><th>Subnet</th><th class="hide-sm">Gateway</th><th class="num">Containers</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {shown.map((n) => {
                const addr = networkAddressing(n);
                const builtin = isBuiltinNetwork(n.Name);
                const isOpen = open === n.Id;
                const count = counts.get(n.Id) ?? counts.get(n.Name) ?? 0;
                return [
                  <tr key={n.Id} data-network={n.Name}>
                    <td>{n.Name} {n.Internal && <span class="badge badge-internal" title="No access to outside networks">internal</span>}</td>
                    <td class="mono hide-sm">{shortId(n.Id)}</td>
                    <td>{n.Driver}</td>
                    <td class="hide-sm">{n.Scope}</td>
                    <td class="mono">{addr.map((a) => a.subnet).join(', ') || '—'}</td>
                    <td class="mono hide-sm">{addr.map((a) => a.gateway).filter(Boolean).join(', ') || '—'}</td>
                    <td class="num">{running.data ? count : '…'}</td>
                    <td>
                      <div class="row-actions">
                        <button type="button" class="btn btn-small" aria-expanded={isOpen} aria-controls={`net-${n.Id}`} onClick={() => setOpen(isOpen ? undefined : n.Id)}>{isOpen ? 'Hide' : 'Inspect'}</button>
                        <ConfirmButton small label="Remove" confirmLabel="Remove" disabled={builtin}
                          title={builtin ? `${n.Name} is a pre-defined network and cannot be removed` : undefined}
                          question={`Remove the network ${n.Name}?`}
                          onConfirm={() => act('Remove', () => api.del(`/networks/${encodeURIComponent(n.Id)}`), `Removed network ${n.Name}`).then((ok) => { if (ok && open === n.Id) setOpen(undefined); reload(); })} />
                      </div>
                    </td>
                  </tr>,
                  isOpen && (
                    <tr key={`${n.Id}-detail`} class="detail-row" id={`net-${n.Id}`}>
                      <td colSpan={8}><div class="detail-cell"><Inspect id={n.Id} /></div></td>
                    </tr>
                  ),
                ];
              })}
            </tbody>
          </table>
        </div>
      ))}</Async>
      {creating && <CreateNetwork onClose={() => setCreating(false)} onCreated={(name) => { setCreating(false); notify('ok', `Created network ${name}`); reload(); }} />}
    </div>
  );
}
