"""The operator, customer and regulator console: server-rendered pages, no external assets."""
