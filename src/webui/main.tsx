// Entry point of the signed-in page.
import { render } from 'preact';
import { App } from './app.tsx';
import { allowOwnStyleElements } from './lib/csp.ts';
import '@xterm/xterm/css/xterm.css';
import './styles/app.css';

allowOwnStyleElements();
render(<App />, document.getElementById('app')!);
