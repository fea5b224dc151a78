"""Monthly security reports and incident dossiers, rendered as HTML and PDF from plain data.

Nothing here talks to AWS. `model` fills the data from table items, `assess` derives the risk
level, chart and next steps, `document` and `dossier` lay the content out once, and `html`
and `pdf` render that layout:

    facts = model.from_records(subscriber_id, partition, related, masked)
    document = document.report_document(model.report_data(facts, "2026-05", generated_at))
    page, pdf_bytes = html.render_html(document), pdf.render_pdf(document)

The PDF renderer imports fpdf2, so this package does not import it.
"""
