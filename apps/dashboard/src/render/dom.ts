/** Tiny DOM helpers (no framework). */

/** The element with this id, or a clear error if index.html lacks it. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`dashboard: element #${id} missing from index.html`);
  return e as T;
}

/** Create an element with a class and text or children. Text is always set as text (no HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, content?: string | Node | (string | Node)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (content !== undefined) {
    for (const c of Array.isArray(content) ? content : [content]) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

/** Set text only when it changed (avoids needless layout). */
export function setText(e: HTMLElement, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Read a CSS custom property of the document root. */
export function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}
