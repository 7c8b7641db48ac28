"""Deployment artefacts (images, compose, Helm, alerts, dashboard) and the offline checks that
keep them in step with the code: metric names come from a running app, not from memory."""
