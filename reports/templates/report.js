// Marks the page once loaded: which sections have content, which images failed, any script error.
window.reportErrors = [];
window.addEventListener('error', function (e) { window.reportErrors.push(String(e.message || e)); });
window.addEventListener('load', function () {
  var rendered = [], broken = [];
  document.querySelectorAll('section[data-section]').forEach(function (s) {
    var body = s.querySelector('.content');
    if (body && body.textContent.trim().length + body.querySelectorAll('img').length > 0) {
      rendered.push(s.dataset.section);
    }
  });
  document.querySelectorAll('img').forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) { broken.push(img.getAttribute('src')); }
  });
  document.body.dataset.rendered = rendered.join(',');
  document.body.dataset.brokenImages = broken.join(',');
  document.body.dataset.errors = window.reportErrors.join(' | ');
});
