"""Settings -> Remote GPU: the page, its provider cards, the credential form and its fields,
import and export."""
