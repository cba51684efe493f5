// The new run form: choosing a preset fills every hyper-parameter with its values, which
// stay editable. The values come from the select's data-presets attribute.
document.addEventListener("DOMContentLoaded", () => {
  const preset = document.getElementById("preset");
  if (!preset) return;
  const presets = JSON.parse(preset.dataset.presets || "{}");
  preset.addEventListener("change", () => {
    const values = presets[preset.value] || {};
    for (const field of document.querySelectorAll("[data-param]")) {
      const value = values[field.dataset.param];
      if (field.type === "checkbox") field.checked = Boolean(value);
      else field.value = value === null || value === undefined ? "" : String(value);
    }
  });
});
