package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/temporalio/ui-server/v2/server/api"
	"github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"github.com/temporalio/ui-server/v2/server/cors"
	"github.com/temporalio/ui-server/v2/server/csrf"
	"github.com/temporalio/ui-server/v2/server/headers"
	"github.com/temporalio/ui-server/v2/server/route"
	uiassets "github.com/temporalio/ui-server/v2/ui"
)

// webUI serves the Temporal Web UI (the ui-server module's embedded assets
// and its HTTP-to-gRPC API) on a listener this package bound itself.
//
// ui-server's own Server type binds its port inside Start and calls
// log.Fatal (os.Exit) when that fails, which a library must not do; so the
// same routes are assembled here on an echo instance served by net/http.
type webUI struct {
	srv  *http.Server
	cfgp *uiconfig.ConfigProviderWithRefresh
	done chan struct{}
}

func newWebUI(ln net.Listener, frontendAddr, namespace string, logger *slog.Logger) (*webUI, error) {
	tcp := ln.Addr().(*net.TCPAddr)
	cfg := &uiconfig.Config{
		TemporalGRPCAddress: frontendAddr,
		Host:                tcp.IP.String(),
		Port:                tcp.Port,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		// Plain HTTP on a local port: the CSRF cookie must not be Secure.
		CORS:             uiconfig.CORS{CookieInsecure: true},
		HideLogs:         true,
		DisableNewsFetch: true,
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("web UI config: %w", err)
	}
	cfgp, err := uiconfig.NewConfigProviderWithRefresh(cfg)
	if err != nil {
		return nil, fmt.Errorf("web UI config: %w", err)
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(cors.CORSMiddleware(cors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, auth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfgp,
	}))
	e.Use(middleware.Secure())
	e.Use(csrf.EnsureTokenCookie(false))
	e.Use(middleware.CSRFWithConfig(csrf.MiddlewareConfig(cfgp, false)))
	e.Pre(route.PublicPath(cfg.PublicPath))

	route.SetHealthRoute(e)
	apiMW := []api.Middleware{
		headers.WithForwardHeaders([]string{auth.AuthorizationExtrasHeader, "Caller-Type"}),
	}
	if err := route.SetAPIRoutes(e, cfgp, apiMW); err != nil {
		cfgp.Close()
		return nil, fmt.Errorf("web UI API routes: %w", err)
	}
	route.SetAuthRoutes(e, cfgp)

	all, err := uiassets.Assets()
	if err != nil {
		cfgp.Close()
		return nil, fmt.Errorf("web UI assets: %w", err)
	}
	assets, err := fs.Sub(all, "local")
	if err != nil {
		cfgp.Close()
		return nil, fmt.Errorf("web UI assets: %w", err)
	}
	if err := route.SetUIRoutes(e, cfg.PublicPath, assets, cfgp); err != nil {
		cfgp.Close()
		return nil, fmt.Errorf("web UI routes: %w", err)
	}
	route.SetRenderRoute(e, "/")

	u := &webUI{
		srv: &http.Server{
			Handler:           e,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		cfgp: cfgp,
		done: make(chan struct{}),
	}
	go func() {
		defer close(u.done)
		if err := u.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("web UI server stopped", "error", err)
		}
	}()
	return u, nil
}

func (u *webUI) stop() error {
	err := u.srv.Close()
	<-u.done
	u.cfgp.Close()
	return err
}
