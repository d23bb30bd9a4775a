"""Type tokens of the Cloudflare resources the program declares (pulumi-cloudflare 6.x).

The policies match resources by these, the diff decides replacements by them and the tests look
resources up by them; one list keeps the three from drifting apart.
"""

D1 = "cloudflare:index/d1Database:D1Database"
WORKER = "cloudflare:index/worker:Worker"
VERSION = "cloudflare:index/workerVersion:WorkerVersion"
DEPLOYMENT = "cloudflare:index/workersDeployment:WorkersDeployment"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
PAGES = "cloudflare:index/pagesProject:PagesProject"
PAGES_DOMAIN = "cloudflare:index/pagesDomain:PagesDomain"
BUCKET = "cloudflare:index/r2Bucket:R2Bucket"
LIFECYCLE = "cloudflare:index/r2BucketLifecycle:R2BucketLifecycle"
HEALTHCHECK = "cloudflare:index/healthcheck:Healthcheck"
NOTIFICATION = "cloudflare:index/notificationPolicy:NotificationPolicy"
RULESET = "cloudflare:index/ruleset:Ruleset"
TURNSTILE = "cloudflare:index/turnstileWidget:TurnstileWidget"
BOT_MANAGEMENT = "cloudflare:index/botManagement:BotManagement"
FALLBACK_ORIGIN = "cloudflare:index/customHostnameFallbackOrigin:CustomHostnameFallbackOrigin"
