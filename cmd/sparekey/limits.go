package main

import (
	"errors"
	"flag"
	"net/netip"
	"strings"

	"golang.org/x/time/rate"

	"github.com/sparekey/sparekey/internal/api"
)

// limitFlags configure the rate limits and whose X-Forwarded-For to believe.
type limitFlags struct {
	perIP           float64
	perIPBurst      int
	perProject      float64
	perProjectBurst int
	trustedProxies  string
}

func (f *limitFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&f.perIP, "rate-limit-ip", 0, "requests per second per client IP; 0 turns the limit off")
	fs.IntVar(&f.perIPBurst, "rate-limit-ip-burst", 0, "requests a client IP may make at once (default: one second's worth)")
	fs.Float64Var(&f.perProject, "rate-limit-project", 0, "requests per second per project; 0 turns the limit off")
	fs.IntVar(&f.perProjectBurst, "rate-limit-project-burst", 0, "requests a project may make at once (default: one second's worth)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated IPs or CIDRs of load balancers whose X-Forwarded-For names the client")
}

func (f *limitFlags) proxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(f.trustedProxies, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, settingError("trusted-proxies", "%q is neither an IP address nor a CIDR prefix", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (f *limitFlags) validate() error {
	var errs []error
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"rate-limit-ip", f.perIP < 0},
		{"rate-limit-ip-burst", f.perIPBurst < 0},
		{"rate-limit-project", f.perProject < 0},
		{"rate-limit-project-burst", f.perProjectBurst < 0},
	} {
		if c.bad {
			errs = append(errs, settingError(c.name, "must not be negative"))
		}
	}
	if _, err := f.proxies(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// options turns the flags into the API's options; call it after validate.
func (f *limitFlags) options() []api.Option {
	proxies, _ := f.proxies()
	return []api.Option{
		api.WithTrustedProxies(proxies),
		api.WithRateLimits(api.RateLimits{
			PerIP:           rate.Limit(f.perIP),
			PerIPBurst:      f.perIPBurst,
			PerProject:      rate.Limit(f.perProject),
			PerProjectBurst: f.perProjectBurst,
		}),
	}
}
