package pgserver

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

const ryukEnv = "TESTCONTAINERS_RYUK_DISABLED"

// pgPort is the Postgres port inside the container.
var pgPort = network.MustParsePort("5432/tcp")

// dockerPing reports whether a Docker engine answers within a few seconds.
func dockerPing(ctx context.Context) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

// imagePresent checks that img is in the local image store: nothing is pulled.
func imagePresent(ctx context.Context, img string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, img); err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %s is not present locally (images are not pulled; build or load it first)", img)
		}
		return fmt.Errorf("inspect image %s: %w", img, err)
	}
	return nil
}

// disableRyuk turns testcontainers' reaper off unless the caller chose otherwise.
func disableRyuk() error {
	if _, set := os.LookupEnv(ryukEnv); set {
		return nil
	}
	if err := os.Setenv(ryukEnv, "true"); err != nil {
		return fmt.Errorf("set %s: %w", ryukEnv, err)
	}
	if !testcontainers.ReadConfig().RyukDisabled {
		return fmt.Errorf("testcontainers read its configuration before %s=true was set; set it in the environment", ryukEnv)
	}
	return nil
}

func (s *Server) startContainer(ctx context.Context, opts Options) (err error) {
	s.mode = ModeContainer
	if err := disableRyuk(); err != nil {
		return err
	}
	img := "postgres:" + opts.Major
	if err := imagePresent(ctx, img); err != nil {
		return err
	}
	defer func() { // testcontainers panics when it cannot find a Docker host
		if r := recover(); r != nil {
			err = fmt.Errorf("start container %s: testcontainers: %v", img, r)
		}
	}()
	runCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	c, err := tcpostgres.Run(runCtx, img,
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword(s.password),
		tcpostgres.WithDatabase("postgres"),
		// loopback only: testcontainers (v0.45) no longer parses "127.0.0.1::5432/tcp" in
		// ExposedPorts; it keeps a binding the host config gives an exposed port
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{pgPort: {{HostIP: netip.AddrFrom4([4]byte{127, 0, 0, 1})}}}
		}),
		testcontainers.CustomizeRequestOption(func(req *testcontainers.GenericContainerRequest) error {
			req.ExposedPorts = []string{pgPort.String()}
			req.Cmd = append(req.Cmd,
				"-c", "max_connections=200",
				"-c", "log_min_error_statement=panic",
				"-c", "log_statement=none")
			return nil
		}),
	)
	if c != nil {
		s.container = c
	}
	if err != nil {
		return fmt.Errorf("start container %s: %w", img, err)
	}
	port, err := c.MappedPort(ctx, pgPort.String())
	if err != nil {
		return fmt.Errorf("container %s: mapped port: %w", c.GetContainerID(), err)
	}
	s.addr = "127.0.0.1:" + port.Port()
	if err := s.waitLogin(ctx, nil); err != nil {
		return fmt.Errorf("container %s: %w", c.GetContainerID(), err)
	}
	return nil
}
