// Datasets: the tenant's datasets and an upload form (CSV or Parquet, multipart).

import { api } from "../api.js";
import { announce, errorBox, fmtNum, h, shortId, table, timeEl } from "../dom.js";

export async function datasetsView(root, { signal }) {
  const list = h("div#datasets-list", { "aria-busy": "true" });
  const result = h("div#upload-result", { "aria-live": "polite" });
  const file = h("input#dataset-file", { type: "file", name: "file", accept: ".csv,.parquet,text/csv", required: true });
  const name = h("input#dataset-name", { type: "text", name: "name", maxLength: 256, autocomplete: "off" });
  const button = h("button", { type: "submit" }, "Upload");
  const form = h("form.card#upload-form", {
    "aria-labelledby": "upload-title",
    onsubmit: async (e) => {
      e.preventDefault();
      if (!file.files.length) return;
      const body = new FormData();
      body.append("file", file.files[0]);
      if (name.value.trim()) body.append("name", name.value.trim());
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      result.replaceChildren(h("p", {}, "Uploading…"));
      try {
        const d = await api("/v1/datasets", { method: "POST", form: body });
        result.replaceChildren(h("p.ok", {}, `Registered ${d.name}: ${d.rows} rows, ${d.columns.length} columns. `,
          h("a", { href: `#/run?dataset=${d.dataset_id}` }, "Train on it")));
        announce(`Dataset ${d.name} registered`);
        form.reset();
        await load();
      } catch (err) {
        result.replaceChildren(errorBox(`Upload failed: ${err.message}`));
      } finally {
        button.disabled = false;
        form.removeAttribute("aria-busy");
      }
    },
  },
    h("h2#upload-title", {}, "Upload a dataset"),
    h("div.field", {}, h("label", { for: "dataset-file" }, "File (CSV or Parquet)"), file),
    h("div.field", {}, h("label", { for: "dataset-name" }, "Name ", h("span.hint", {}, "(optional; defaults to the file name)")), name),
    button,
    result,
  );
  root.append(h("div.page-head", {}, h("h1", {}, "Datasets")), form, list);

  async function load() {
    try {
      const page = await api("/v1/datasets?limit=500", { signal });
      list.replaceChildren(table("Your datasets", ["Name", "ID", "Rows", "Columns", "Created", ""],
        page.items.map((d) => [
          d.name,
          h("span.mono", { title: d.dataset_id }, shortId(d.dataset_id)),
          fmtNum(d.rows),
          h("details", {}, h("summary", {}, `${d.columns.length} columns`),
            h("ul.columns", {}, d.columns.map((c) => h("li", {}, h("code", {}, c.name), ` ${c.type}${c.nulls ? `, ${c.nulls} nulls` : ""}`)))),
          timeEl(d.created_at),
          h("a", { href: `#/run?dataset=${d.dataset_id}`, "aria-label": `Train on ${d.name}` }, "Train"),
        ]), { className: "datasets", empty: "No datasets yet: upload one above." }));
    } catch (err) {
      list.replaceChildren(errorBox(err));
    }
    list.setAttribute("aria-busy", "false");
  }
  await load();
}
