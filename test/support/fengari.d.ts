// The few parts of fengari (a Lua 5.3 VM in JavaScript) the Argo CD health test uses; the package
// ships no types. https://github.com/fengari-lua/fengari
declare module 'fengari' {
  export type LuaState = object;
  export const lua: {
    LUA_OK: number;
    lua_tostring(L: LuaState, index: number): Uint8Array;
  };
  export const lauxlib: {
    luaL_newstate(): LuaState;
    luaL_dostring(L: LuaState, code: Uint8Array): number;
  };
  export const lualib: { luaL_openlibs(L: LuaState): void };
  export function to_luastring(s: string): Uint8Array;
  export function to_jsstring(s: Uint8Array): string;
}
