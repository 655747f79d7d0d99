// The run form: `docker run -d` in a dialog. When the image is missing it is pulled first
// (with progress), as `docker run` does.
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Modal } from './ui.tsx';
import { PullProgressView } from './pull-progress.tsx';
import { ApiError } from '../lib/api.ts';
import { api, handleSignedOut } from '../lib/client.ts';
import { createBody, type RunFields } from '../lib/run-spec.ts';
import { JsonStreamDecoder, PullProgress, type JsonMessage } from '../lib/streams.ts';

export function RunForm({ onClose, onStarted, image = '' }: { onClose: () => void; onStarted: (id: string) => void; image?: string }): JSX.Element {
  const [f, setF] = useState<RunFields>({ image, restart: 'no' });
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState<string>();
  const [pull, setPull] = useState<PullProgress>();
  const set = (k: keyof RunFields) => (e: Event) => {
    const t = e.target as HTMLInputElement;
    setF({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value });
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    let body;
    try { body = createBody(f); } catch (err) { setError((err as Error).message); return; }
    const name = f.name?.trim() || undefined;
    try {
      setBusy('Creating…');
      let created: { Id: string };
      try {
        created = await api.post<{ Id: string }>('/containers/create', body, { name });
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404 || !/No such image/i.test(err.message)) throw err;
        setBusy('Pulling image…');
        const progress = new PullProgress();
        setPull(progress);
        const dec = new JsonStreamDecoder<JsonMessage>();
        await api.stream('POST', '/images/create', { query: { fromImage: body.Image.includes(':') || body.Image.includes('@') ? body.Image : `${body.Image}:latest` } }, (chunk) => {
          for (const m of dec.push(chunk)) progress.apply(m);
          setPull(Object.assign(Object.create(PullProgress.prototype) as PullProgress, progress));
        });
        if (progress.error) throw new Error(progress.error);
        setBusy('Creating…');
        created = await api.post<{ Id: string }>('/containers/create', body, { name });
      }
      setBusy('Starting…');
      await api.post(`/containers/${created.Id}/start`);
      onStarted(created.Id);
    } catch (err) {
      if (handleSignedOut(err)) return;
      setError((err as Error).message);
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <Modal title="Run a container" onClose={onClose} wide>
      <form class="form" onSubmit={submit}>
        <div class="form-grid">
          <label>Image<input name="image" required value={f.image} onInput={set('image')} placeholder="registry:5000/app:1.0" autofocus /></label>
          <label>Name<input name="name" value={f.name ?? ''} onInput={set('name')} placeholder="optional" /></label>
          <label class="span-2">Command<input name="command" value={f.command ?? ''} onInput={set('command')} placeholder="the image's default; e.g. sh -c 'echo hi'" /></label>
          <label>Ports<textarea name="ports" rows={2} value={f.ports ?? ''} onInput={set('ports')} placeholder="8080:80" /></label>
          <label>Environment<textarea name="env" rows={2} value={f.env ?? ''} onInput={set('env')} placeholder="KEY=value (one per line)" /></label>
          <label class="span-2">Volumes<textarea name="volumes" rows={2} value={f.volumes ?? ''} onInput={set('volumes')} placeholder="myvolume:/data or /host/dir:/data:ro (one per line)" /></label>
          <label>Memory limit<input name="memory" value={f.memory ?? ''} onInput={set('memory')} placeholder="e.g. 256m" /></label>
          <label>CPUs<input name="cpus" value={f.cpus ?? ''} onInput={set('cpus')} placeholder="e.g. 0.5" inputMode="decimal" /></label>
          <label>Restart policy
            <select name="restart" value={f.restart} onChange={set('restart')}>
              <option value="no">no</option><option value="on-failure">on-failure</option>
              <option value="unless-stopped">unless-stopped</option><option value="always">always</option>
            </select>
          </label>
          <label class="check"><input type="checkbox" name="tty" checked={f.tty ?? false} onChange={set('tty')} /> Allocate a TTY (-it)</label>
        </div>
        {pull && <PullProgressView progress={pull} />}
        {error && <p class="form-error" role="alert">{error}</p>}
        <div class="form-actions">
          <button type="button" class="btn" onClick={onClose}>Cancel</button>
          <button type="submit" class="btn btn-primary" disabled={busy !== undefined}>{busy ?? 'Run'}</button>
        </div>
      </form>
    </Modal>
  );
}
