// The Content-Security-Policy allows styles from our files and from <style> elements carrying
// this response's nonce only. Libraries that add <style> elements (xterm.js does, for its
// theme and cell sizes) cannot know the nonce, so elements our own scripts create get it here;
// markup injected by anything else still has none and is refused.
export function allowOwnStyleElements(): void {
  const nonce = document.querySelector<HTMLMetaElement>('meta[name="berth-style-nonce"]')?.content;
  if (!nonce) return;
  const create = Document.prototype.createElement;
  Document.prototype.createElement = function (this: Document, tag: string, options?: ElementCreationOptions): HTMLElement {
    const el = create.call(this, tag, options);
    if (tag.toLowerCase() === 'style') (el as HTMLStyleElement).nonce = nonce;
    return el;
  } as typeof Document.prototype.createElement;
}
