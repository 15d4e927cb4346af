// A list page's table: rows loaded through the API into a host element, the API's error in their place when the
// load fails (its message is kboss's own Chinese one, or the console's words for a network or HTTP failure, see
// api.js), and the row actions that end by loading the list again (a saving dialog, a confirmed delete).

import { api } from "../api.js";
import { t } from "../i18n.js";
import { busy, clear, confirmDialog, errorNotice, formDialog, spinner, table, toast, toastError } from "../ui.js";

// A filter or picker is read at each load, so `path` and `query` may be functions.
const current = (value) => (typeof value === "function" ? value() : value);

// spec: {path, query, columns() -> table columns, above(rows) -> nodes shown over the table, errorTestid,
// showLoading (a spinner while loading, where the list is swapped for another one), and table()'s options}.
export function listPage(host, spec) {
  const { path, query = { rows: 1000 }, columns, above, errorTestid, showLoading, ...tableOptions } = spec;

  // Answers the rows shown, or null when the load failed (the error is shown instead).
  async function load() {
    if (showLoading) clear(host, spinner());
    try {
      const { rows } = await api.get(current(path), current(query));
      clear(host, above ? above(rows) : null, table(columns(), rows, tableOptions));
      return rows;
    } catch (error) {
      clear(host, errorNotice(error.message, errorTestid));
      return null;
    }
  }

  // A form dialog that saves a row: say so (`done`: the toast's message key) and reload. Answers what was saved,
  // or null when the dialog was cancelled.
  async function save(dialog, { done = "toast.saved", name = (saved) => saved.name } = {}) {
    const saved = await formDialog(dialog);
    if (!saved) return null;
    toast(t(done, { name: name(saved) }), "success");
    await load();
    return saved;
  }

  // The delete button of a row: confirm, delete with the button busy, say so, reload; errors as a toast.
  async function remove(button, { path: rowPath, name, question }) {
    if (!(await confirmDialog(question, t("action.delete")))) return;
    try {
      await busy(button, () => api.del(rowPath));
      toast(t("toast.deleted", { name }), "success");
      await load();
    } catch (error) {
      toastError(error);
    }
  }

  return { load, save, remove };
}
