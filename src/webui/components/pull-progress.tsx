// Per-layer progress of a pull or push, as the docker CLI draws it, with bars.
import type { JSX } from 'preact';
import { humanSize } from '../lib/format.ts';
import type { PullProgress } from '../lib/streams.ts';

export function PullProgressView({ progress }: { progress: PullProgress }): JSX.Element {
  const layers = [...progress.layers.values()];
  // "Digest:" and "Status:" close a pull: below the layers, where docker prints them.
  const closing = (l: string): boolean => /^(Digest|Status):/.test(l);
  return (
    <div class="pull-progress" aria-live="polite" data-testid="pull-progress">
      {progress.lines.filter((l) => !closing(l)).map((l, i) => <div key={`l${i}`} class="mono">{l}</div>)}
      {layers.map((l) => (
        <div key={l.id} class="layer-row" data-layer={l.id}>
          <span class="mono">{l.id}</span>
          <span class="layer-status">{l.status}</span>
          {l.total > 0 && !l.done && (
            <>
              <progress max={l.total} value={Math.min(l.current, l.total)} aria-label={`layer ${l.id}`} />
              <span class="muted">{humanSize(l.current)} / {humanSize(l.total)}</span>
            </>
          )}
        </div>
      ))}
      {progress.lines.filter(closing).map((l, i) => <div key={`c${i}`} class="mono">{l}</div>)}
      {progress.error && <p class="form-error" role="alert">{progress.error}</p>}
    </div>
  );
}
