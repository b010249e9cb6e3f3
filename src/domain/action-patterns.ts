/**
 * Action patterns on API tokens: `vm.*` allows every action whose name starts with `vm.`, `*`
 * allows all, a plain name allows exactly that action. `*` matches any characters, dots included.
 */
export function actionPatternMatches(pattern: string, action: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`);
  return regex.test(action);
}

/** True when the token may use `action`: no patterns means any action. */
export function actionAllowed(patterns: readonly string[] | undefined, action: string): boolean {
  return patterns === undefined || patterns.some((p) => actionPatternMatches(p, action));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
