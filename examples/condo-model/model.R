# The condo valuation model: a random forest (ranger) on the team's condo sales, honouring
# modelrun's container contract v2 (docs/contract.md in modelrun). It reads its data from the
# S3 URI in config.json (the repository's, so a PR that changes the data shows it in the diff),
# trains on every sale before the last `holdout_months`, and writes its holdout predictions
# with two grouping columns plus metrics.json naming them; modelrun computes the statistics.
# Needs R with ranger and jsonlite, and the AWS CLI (`aws`) for S3.
suppressPackageStartupMessages({
  library(jsonlite)
  library(ranger)
})

say <- function(...) cat("modelrun-condo: ", sprintf(...), "\n", sep = "")
fail <- function(status, ...) {
  message("modelrun-condo: ", sprintf(...))
  quit(status = status)
}

results <- Sys.getenv("MODELRUN_RESULTS_URI")
run_id <- Sys.getenv("MODELRUN_RUN_ID")
if (results == "" || run_id == "") {
  fail(2, "bad input: MODELRUN_RESULTS_URI and MODELRUN_RUN_ID are required")
}
if (!grepl("^(s3|file)://.*/$", results)) {
  fail(2, "bad input: MODELRUN_RESULTS_URI must be s3:// or file:// ending in /")
}
threads <- max(1L, as.integer(Sys.getenv("MODELRUN_THREADS", "1")), na.rm = TRUE)
if (!file.exists("config.json")) fail(2, "bad input: no config.json in %s", getwd())
config <- fromJSON("config.json")
if (!startsWith(config$data_uri, "s3://")) {
  fail(2, "bad config: data_uri must be s3://, not %s", config$data_uri)
}
# What the job's role may read, as modelrun passes it: logged for whoever reads a refusal.
locations <- Sys.getenv("MODELRUN_DATA_LOCATIONS")
if (nzchar(locations)) say("data locations granted: %s", locations)

# `aws s3 cp` with the endpoint passed where one is set (the local stack; on Batch none is):
# Debian's awscli 2.9, which runs the local stack's jobs, ignores AWS_ENDPOINT_URL (2.13+ read it).
s3_cp <- function(...) {
  endpoint <- Sys.getenv("AWS_ENDPOINT_URL")
  c(if (nzchar(endpoint)) c("--endpoint-url", endpoint), "s3", "cp", "--only-show-errors", ...)
}

# The data: one object, downloaded whole (about 160 KB). A refusal or a missing key ends the run
# with one line naming the URI and what AWS said, and status 2 (bad input, not a model failure).
data_path <- tempfile("sales-", fileext = ".csv.gz")
said <- suppressWarnings(system2("aws", s3_cp(config$data_uri, data_path), stdout = TRUE, stderr = TRUE))
if (!is.null(attr(said, "status")) || !file.exists(data_path)) {
  said <- trimws(said[nzchar(trimws(said))])
  fail(2, "cannot read %s: %s", config$data_uri, if (length(said)) said[length(said)] else "aws s3 cp failed")
}

sales <- read.csv(gzfile(data_path), colClasses = c(sale_id = "character", unit_pin = "character",
                                                    market_area = "character"))
sales <- sales[sales$sale_price > 0, ]
sales$sale_date <- as.Date(sales$sale_date)
sales$sale_time <- as.numeric(format(sales$sale_date, "%Y")) +
  (as.numeric(format(sales$sale_date, "%j")) - 1) / 365.25
# A reviewer reads the statistics by unit size as well as by market area.
sales$size_band <- cut(sales$living_sf, c(0, 1000, 1500, 2000, Inf), right = FALSE,
                       labels = c("under 1000 sf", "1000-1499 sf", "1500-1999 sf", "2000+ sf"))

holdout_from <- seq(max(sales$sale_date), by = sprintf("-%d months", config$holdout_months),
                    length.out = 2)[2] + 1
train <- sales[sales$sale_date < holdout_from, ]
test <- sales[sales$sale_date >= holdout_from, ]

# A forest cannot extrapolate in time, and the holdout comes after every training sale. So the
# market's trend is taken out first: the yearly log-price slope of a small hedonic regression on
# the last `trend_years` of training, every price brought to the end of training with it, the
# forest fitted on those, and its estimates carried forward along the same slope.
recent <- train[train$sale_time >= max(train$sale_time) - config$trend_years, ]
trend <- lm(log(sale_price) ~ sale_time + log(living_sf) + bldg_grade + market_area, data = recent)
slope <- unname(coef(trend)["sale_time"])
t0 <- max(train$sale_time)
train$log_price_t0 <- log(train$sale_price) - slope * (train$sale_time - t0)

features <- c("living_sf", "bldg_grade", "beds", "baths", "age", "eff_age", "waterfront",
              "longitude", "latitude")
training <- Sys.time()
fit <- ranger(x = train[, features], y = train$log_price_t0, num.trees = config$num_trees,
              min.node.size = config$min_node_size, num.threads = threads, seed = config$seed)
train_seconds <- round(as.numeric(difftime(Sys.time(), training, units = "secs")), 3)
estimate <- exp(predict(fit, test[, features], num.threads = threads)$predictions +
                  slope * (test$sale_time - t0))
holdout <- data.frame(sale_id = test$sale_id, sale_price = test$sale_price,
                      estimate = round(estimate), market_area = test$market_area,
                      size_band = test$size_band)

out <- if (startsWith(results, "file://")) sub("^file://", "", results) else tempfile("modelrun-")
dir.create(out, recursive = TRUE, showWarnings = FALSE)
con <- gzfile(file.path(out, "predictions.csv.gz"), "w")
write.csv(holdout, con, row.names = FALSE)
close(con)
invisible(file.copy("config.json", file.path(out, "config.json"), overwrite = TRUE))
write_json(list(schema_version = "2", run_id = run_id, predictions = "predictions.csv.gz",
                groups = list("market_area", "size_band"), params = "config.json",
                metrics = list(
                  list(name = "oob_rmse_log", value = round(sqrt(fit$prediction.error), 4),
                       better = "lower"),
                  list(name = "trend_per_year", value = round(expm1(slope), 4), unit = "share"),
                  list(name = "train_seconds", value = train_seconds, unit = "s", better = "lower")),
                model = list(library = paste("ranger", packageVersion("ranger")), device_used = "cpu",
                             threads = threads, train_seconds = train_seconds),
                data = list(source = config$data_uri, rows = nrow(sales), n_train = nrow(train),
                            holdout = list(from = format(min(test$sale_date)),
                                           to = format(max(test$sale_date))))),
           file.path(out, "metrics.json"), auto_unbox = TRUE, digits = NA)
if (startsWith(results, "s3://")) {  # metrics.json last: a reader that sees it sees a whole run
  for (name in c("predictions.csv.gz", "config.json", "metrics.json")) {
    if (system2("aws", s3_cp(file.path(out, name), paste0(results, name))) != 0) {
      fail(1, "cannot write %s%s", results, name)
    }
  }
}
say("run %s ok: %d holdout predictions -> %smetrics.json", run_id, nrow(holdout), results)
