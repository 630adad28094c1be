//go:build tools

package repricer

import (
	_ "github.com/apache/arrow-go/v18/parquet"
	_ "github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	_ "github.com/pressly/goose/v3"
	_ "github.com/shopspring/decimal"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/errgroup"
)
