// Command lua-health runs an Argo CD resource health script the way Argo CD does: in gopher-lua (a
// Lua 5.1 dialect), with the global `obj` set to the object decoded from its JSON, and prints the
// table the script returns (Argo CD's `hs`: status and message) as JSON.
//
// Usage: lua-health SCRIPT.lua < OBJECTS.jsonl
//
// Each input line is one object; each output line is the returned table, or {"error": "..."} when the
// script fails. One process serves many objects so a test pays the start-up once.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: lua-health SCRIPT.lua < OBJECTS.jsonl")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var obj map[string]any
		var result any
		if err := json.Unmarshal(in.Bytes(), &obj); err != nil {
			result = map[string]string{"error": err.Error()}
		} else if hs, err := run(string(script), obj); err != nil {
			result = map[string]string{"error": err.Error()}
		} else {
			result = hs
		}
		if err := out.Encode(result); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run mirrors Argo CD's runLua and ExecuteHealthLua (util/lua/lua.go): a fresh state per object with
// only the package, base and table libraries open (no string or math library: a script that calls
// string.format works in a stock Lua and fails in Argo CD), a 1 s deadline, `obj` as a global
// table, and the script's return value read back as a table. Argo CD also opens a reduced `os`
// (time and date) and preloads a json module; our script uses neither, so their absence here makes
// any accidental use fail loudly instead of passing.
func run(script string, obj map[string]any) (any, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return nil, err
	}
	ret := L.Get(-1)
	if ret == lua.LNil {
		// Argo CD reads a nil return as an empty health status.
		return map[string]any{}, nil
	}
	tbl, ok := ret.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("the script returned %s, not a table", ret.Type().String())
	}
	return fromLua(tbl), nil
}

// toLua converts a decoded JSON value as Argo CD's decodeValue does: objects and arrays become tables
// (arrays 1-based), numbers LNumber (a float64, so a generation 2 concatenates as "2"), null nil.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	default:
		return lua.LString(fmt.Sprint(x))
	}
}

// fromLua reads the returned table back; Argo CD reads only string fields (status, message), so
// nested tables are rendered as maps and anything else as its string form.
func fromLua(t *lua.LTable) map[string]any {
	m := map[string]any{}
	t.ForEach(func(k, v lua.LValue) {
		switch x := v.(type) {
		case *lua.LTable:
			m[k.String()] = fromLua(x)
		case lua.LBool:
			m[k.String()] = bool(x)
		case lua.LNumber:
			m[k.String()] = float64(x)
		default:
			m[k.String()] = v.String()
		}
	})
	return m
}
