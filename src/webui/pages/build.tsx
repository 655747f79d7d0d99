// TODO(issue 7): being written.
import type { JSX } from 'preact';
import { PageHeader } from '../components/ui.tsx';

export function BuildPage(): JSX.Element {
  return <div class="page"><PageHeader title="BuildPage" /></div>;
}
