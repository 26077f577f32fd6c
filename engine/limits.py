"""Size limits on every input, in one place: the workflows' payload schemas, the API's schemas, the UI's forms
and the engine's own comment check take their caps from here, so the JSON Schemas clients read (the OpenAPI
document, /api/v1/workflows/{name}) state what is enforced.

Caps follow the domain, not the machine: a store stocks a few thousand SKUs, a plan has a handful of actions.
The byte limits of whole requests (JSON_MAX_BYTES, ATTACHMENT_MAX_BYTES) and the CSV row cap (IMPORT_MAX_ROWS)
are settings in config.py.
"""
CODE_MAX = 64          # SKU codes, org unit codes, logins, order references, zones
NAME_MAX = 200         # names and titles: a customer, a product, a cohort, a plan action
TEXT_MAX = 4000        # free text: descriptions, observations, notes, resolutions, reasons
COMMENT_MAX = 4000     # the comment on any action; it stays in the append-only audit trail for ever
SHORT_TEXT_MAX = 2000  # shorter free text some schemas chose: a handover's notes, a reopen reason
URL_MAX = 500
PASSWORD_MAX = 200
QUERY_MAX = 200        # a search term or filter value in a query string
CURSOR_MAX = 100       # an opaque pagination cursor

GOODS_LINES_MAX = 5000    # goods lines counted at a handover (every line of the store on Tuesdays)
BOOK_LINES_MAX = 20000    # book stock lines of a stocktake; the CSV import's default IMPORT_MAX_ROWS too
COUNT_LINES_MAX = 20000   # lines counted in one zone, or recounted
PLAN_ACTIONS_MAX = 50     # actions in a monthly plan
TRAINEES_MAX = 50         # trainees in a cohort (and so scores in a stage assessment)
LIST_MAX = 100            # small lists of names: webhook events, a new user's roles
TARGETS_MAX = 5000        # annual targets set in one request

DAY_LINES_MAX = 5000      # lines of one store's day: sales lines, stock cards (进销存卡), allocation lines
