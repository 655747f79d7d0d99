// TODO(issue 7): being written.
import type { JSX } from 'preact';
import { PageHeader } from '../components/ui.tsx';

export function ContainerPage({ id, tab }: { id: string; tab: string }): JSX.Element {
  return <div class="page"><PageHeader title="ContainerPage" /></div>;
}
