# A minimal model in R that honours modelrun's container contract (docs/contract.md): a linear
# model of log(price) on the King County sales the sample uses, trained on all but the last six
# months, its holdout predictions written as gzip'd CSV with the market area as a grouping
# column, and metrics.json naming them. modelrun computes every statistic from the predictions.
# Needs Debian's r-base-core and r-cran-jsonlite; to S3 it uploads with the AWS CLI (awscli).
library(jsonlite)

started <- Sys.time()
results <- Sys.getenv("MODELRUN_RESULTS_URI")
run_id <- Sys.getenv("MODELRUN_RUN_ID")
if (results == "" || run_id == "") {
  message("modelrun-r: bad input: MODELRUN_RESULTS_URI and MODELRUN_RUN_ID are required")
  quit(status = 2)
}
data_path <- Sys.getenv("DATA_PATH", "data/seattle_sales.csv.xz")

sales <- read.csv(xzfile(data_path), colClasses = c(sale_id = "character", area = "character"))
sales <- sales[sales$sale_price > 0, ]
sales$sale_date <- as.Date(sales$sale_date)
sales$sale_time <- as.numeric(format(sales$sale_date, "%Y")) + (as.numeric(format(sales$sale_date, "%j")) - 1) / 365.25
start <- seq(max(sales$sale_date), by = "-6 months", length.out = 2)[2] + 1
train <- sales[sales$sale_date < start, ]
test <- sales[sales$sale_date >= start, ]

fit <- lm(log(sale_price) ~ log(tot_sf) + log(lot_sf) + bldg_grade + beds + baths + age + wfnt +
            latitude + longitude + sale_time, data = train)
holdout <- data.frame(sale_id = test$sale_id, sale_price = test$sale_price,
                      estimate = exp(predict(fit, test)), area = test$area)

out <- if (startsWith(results, "file://")) sub("^file://", "", results) else tempfile("modelrun-")
dir.create(out, recursive = TRUE, showWarnings = FALSE)
con <- gzfile(file.path(out, "predictions.csv.gz"), "w")
write.csv(holdout, con, row.names = FALSE)
close(con)
seconds <- as.numeric(difftime(Sys.time(), started, units = "secs"))
write_json(list(schema_version = "2", run_id = run_id, predictions = "predictions.csv.gz",
                groups = list("area"),
                metrics = list(list(name = "train_seconds", value = round(seconds, 3), unit = "s",
                                    better = "lower")),
                model = list(library = "R lm", device_used = "cpu"),
                data = list(source = "King County sales (model_container/data)", rows = nrow(sales),
                            n_train = nrow(train))),
           file.path(out, "metrics.json"), auto_unbox = TRUE, digits = NA)
if (startsWith(results, "s3://")) {  # the predictions first, metrics.json last
  # Debian's awscli (2.9) does not read AWS_ENDPOINT_URL (2.13 does): pass it where one is set,
  # as on the local stack; on Batch none is.
  endpoint <- Sys.getenv("AWS_ENDPOINT_URL")
  for (name in c("predictions.csv.gz", "metrics.json")) {
    args <- c(if (nzchar(endpoint)) c("--endpoint-url", endpoint), "s3", "cp", "--only-show-errors",
              file.path(out, name), paste0(results, name))
    status <- system2("aws", args)
    if (status != 0) quit(status = 1)
  }
}
cat(sprintf("modelrun-r: run %s ok: %d holdout predictions -> %smetrics.json\n", run_id, nrow(holdout), results))
